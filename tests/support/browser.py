"""Headless Debian Chromium driven by selenium, for tests that look at a page as a person would.

Uses the system's `chromium` and `chromedriver` (Debian's chromium and chromium-driver, which
`scripts/install-chromium.sh` installs from `make test`); nothing is downloaded at run time:
both paths are given to selenium, so its driver manager never runs. Missing binaries skip the
test with one line, or fail it under CI=true. Screenshots go to build/screenshots/ (ignored
by git).
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

from tests import envtest

SCREENSHOTS = envtest.REPO_ROOT / "build" / "screenshots"
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1400,900",
)


def _binaries() -> tuple[str, str]:
    browser = shutil.which("chromium")
    driver = shutil.which("chromedriver")
    if browser is None or driver is None:
        reason = (
            "Debian's chromium and chromium-driver are not installed (scripts/install-chromium.sh)"
        )
        if envtest.ci_requires_cluster():
            pytest.fail(f"CI=true but {reason}", pytrace=False)
        pytest.skip(reason)
    return browser, driver


@contextlib.contextmanager
def chromium() -> Iterator[webdriver.Chrome]:
    """A headless Chromium with a fresh profile, quit on exit."""
    browser, driver = _binaries()
    with tempfile.TemporaryDirectory(prefix="gitops-receiver-chromium-") as profile:
        options = webdriver.ChromeOptions()
        options.binary_location = browser
        for flag in FLAGS:
            options.add_argument(flag)
        options.add_argument(f"--user-data-dir={profile}")
        session = webdriver.Chrome(options=options, service=Service(executable_path=driver))
        try:
            session.set_page_load_timeout(30)
            yield session
        finally:
            session.quit()


def screenshot(session: webdriver.Chrome, name: str) -> Path:
    """Save the whole page (not just the window) as build/screenshots/<name>.png."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    height = int(session.execute_script("return document.documentElement.scrollHeight"))
    session.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": 1400, "height": min(height, 4000), "deviceScaleFactor": 1, "mobile": False},
    )
    try:
        assert session.save_screenshot(str(path)), f"no screenshot written to {path}"
    finally:
        session.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    return path
