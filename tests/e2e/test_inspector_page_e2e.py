"""The inspector page in headless Debian Chromium: what a person sees, and no injected script.

The health app serves a journal holding an accepted push, a skip by ref, a failed patch and a
hostile delivery whose repository, ref and event carry markup; Chromium loads the list and the
detail page, screenshots go to build/screenshots/, and the assertions read the rendered text.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from selenium.webdriver.common.by import By

from receiver import cli
from receiver.http import health
from receiver.inspector.journal import (
    Candidate,
    Decision,
    Entry,
    Journal,
    ObjectKey,
    PatchState,
    StatusPost,
)
from tests.support import browser

HOSTILE_REPO = "github.com/evil/<script>window.pwned=1</script>"
HOSTILE_REF = "refs/heads/<img src=x onerror=window.pwned=2>"


def delivery(**fields: object) -> Entry:
    base: dict[str, object] = {
        "received_at_s": 1_764_500_000.0,
        "endpoint": "/webhooks/github",
        "source": "github",
        "http_status": 200,
        "outcome": "accepted",
        "verification": "verified",
        "latency_ms": 1.4,
        "event": "push",
        "delivery_id": "5f1c-0001",
        "repository": "github.com/example/fleet",
        "ref": "refs/heads/main",
        "commit": "2f9c1e8b7a6d5c4b3a29181716151413121110ff",
    }
    base.update(fields)
    return Entry(**base)  # type: ignore[arg-type]


def fill(journal: Journal) -> None:
    fleet = ObjectKey("GitRepository", "flux-system", "fleet")
    staging = ObjectKey("GitRepository", "flux-system", "fleet-staging")
    journal.add(
        delivery(
            candidates=[
                Candidate(
                    fleet, Decision.RECONCILE, "branch main matches", None, PatchState.PATCHED, 1
                ),
                Candidate(staging, Decision.SKIP, "branch staging does not match", "ref"),
            ],
            statuses=[StatusPost("kustomization/apps", "pending", "created")],
        )
    )
    journal.add(
        delivery(
            source="gitlab",
            endpoint="receiver flux-system/gitlab",
            http_status=401,
            outcome="unauthorized",
            verification="failed",
            event="Push Hook",
            delivery_id=None,
            repository=None,
            ref=None,
            commit=None,
            message="X-Gitlab-Token does not match: check the shared secret",
        )
    )
    journal.add(
        delivery(
            delivery_id="5f1c-0003",
            candidates=[
                Candidate(
                    ObjectKey("GitRepository", "flux-system", "deleted-one"),
                    Decision.RECONCILE,
                    "branch main matches",
                    None,
                    PatchState.NOT_FOUND,
                    1,
                    "PATCH ...: HTTP 404: not found",
                )
            ],
        )
    )
    journal.add(delivery(repository=HOSTILE_REPO, ref=HOSTILE_REF, event="<b>push</b>"))


@pytest.fixture
async def inspector_url() -> AsyncIterator[str]:
    journal = Journal()
    fill(journal)
    runner = web.AppRunner(
        health.health_app(ready=lambda: (True, "ok"), journal=journal, replica="gitops-receiver-0")
    )
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


def look(url: str) -> dict[str, object]:
    """Everything the assertions need, read in one browser session (blocking)."""
    seen: dict[str, object] = {}
    with browser.chromium() as session:
        session.get(f"{url}/deliveries")
        seen["list_text"] = session.find_element(By.TAG_NAME, "body").text
        seen["rows"] = len(session.find_elements(By.CSS_SELECTOR, "tbody tr"))
        seen["scripts"] = len(session.find_elements(By.TAG_NAME, "script"))
        seen["images"] = len(session.find_elements(By.TAG_NAME, "img"))
        seen["pwned"] = session.execute_script(
            "return window.pwned === undefined ? null : window.pwned"
        )
        seen["refresh"] = session.find_element(
            By.CSS_SELECTOR, 'meta[http-equiv="refresh"]'
        ).get_attribute("content")
        seen["list_png"] = browser.screenshot(session, "inspector-list")
        session.get(f"{url}/deliveries?failed=1")
        seen["failed_text"] = session.find_element(By.TAG_NAME, "tbody").text
        session.get(f"{url}/deliveries?source=gitlab")
        seen["gitlab_rows"] = len(session.find_elements(By.CSS_SELECTOR, "tbody tr"))
        session.get(f"{url}/deliveries")
        session.find_element(By.LINK_TEXT, "#1").click()
        seen["detail_text"] = session.find_element(By.TAG_NAME, "body").text
        seen["detail_png"] = browser.screenshot(session, "inspector-detail")
    return seen


async def test_page_shows_deliveries_and_runs_no_injected_script(inspector_url: str) -> None:
    seen = await asyncio.to_thread(look, inspector_url)
    text = str(seen["list_text"])
    assert "replica gitops-receiver-0" in text
    assert seen["rows"] == 4
    # Hostile values read as text; nothing they carried became an element or ran.
    assert HOSTILE_REPO in text
    assert HOSTILE_REF in text
    assert "<b>push</b>" in text
    assert seen["scripts"] == 0 and seen["images"] == 0
    assert seen["pwned"] is None
    assert seen["refresh"] == "5"
    assert "unauthorized 401" in text
    assert "1/1 patched, 1 skipped" in text
    assert "0/1 patched, 1 failed" in text
    # Filters: failed only shows the refused delivery and the failed patch, newest first.
    failed = str(seen["failed_text"]).splitlines()
    assert [line.split()[0] for line in failed] == ["#3", "#2"]
    assert seen["gitlab_rows"] == 1
    # Detail of the first delivery: each object with its decision, and the commit status.
    detail = str(seen["detail_text"])
    assert "delivery #1" in detail
    assert "GitRepository/flux-system/fleet reconcile branch main matches patched 1" in detail
    assert (
        "GitRepository/flux-system/fleet-staging skip ref branch staging does not match" in detail
    )
    assert "kustomization/apps pending created" in detail
    for key in ("list_png", "detail_png"):
        png = seen[key]
        assert isinstance(png, browser.Path) and png.stat().st_size > 10_000


async def test_cli_prints_the_same_deliveries_as_a_table(
    inspector_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = await asyncio.to_thread(cli.main, ["deliveries", "--url", inspector_url, "--failed"])
    out = capsys.readouterr().out
    assert code == 0, out
    lines = out.splitlines()
    assert lines[0] == "replica:    gitops-receiver-0 (each replica keeps only its own deliveries)"
    assert lines[1] == "deliveries: 2 matched, 4 kept (at most 1000)"
    assert lines[3].split() == [
        "ID",
        "TIME",
        "SOURCE",
        "REPOSITORY",
        "REF",
        "COMMIT",
        "OUTCOME",
        "OBJECTS",
    ]
    assert lines[4].split()[:7] == [
        "3",
        "2025-11-30T10:53:20.000Z",
        "github",
        "github.com/example/fleet",
        "refs/heads/main",
        "2f9c1e8b7a6d",
        "accepted",
    ]
    assert lines[4].endswith("accepted 200 (patch failed)  0/1 patched, 1 failed")
    assert lines[5].split()[:4] == ["2", "2025-11-30T10:53:20.000Z", "gitlab", "-"]
    assert len(lines) == 6

    code = await asyncio.to_thread(cli.main, ["deliveries", "--url", inspector_url, "1"])
    detail = capsys.readouterr().out
    assert code == 0
    assert "repository:   github.com/example/fleet" in detail
    rows = {line.split()[0]: line.split() for line in detail.splitlines() if line}
    assert rows["GitRepository/flux-system/fleet"][1:4] == ["reconcile", "patched", "1"]
    assert rows["GitRepository/flux-system/fleet-staging"][1:] == [
        "skip",
        "-",
        "-",
        "branch",
        "staging",
        "does",
        "not",
        "match",
    ]
    assert "status: kustomization/apps pending (created)" in detail

    code = await asyncio.to_thread(cli.main, ["deliveries", "--url", inspector_url, "99"])
    assert code == 1
    assert "HTTP 404: no delivery '99' on replica gitops-receiver-0" in capsys.readouterr().err
