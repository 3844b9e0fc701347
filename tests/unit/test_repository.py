"""The repository tracks only source: no ignored file (virtualenv, egg-info, caches), no big blob."""

from __future__ import annotations

import subprocess
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MAX_TRACKED_BYTES = 1024 * 1024


def _git(*args: str) -> list[str]:
    result = subprocess.run(
        ["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )
    if result.returncode != 0:
        pytest.skip(f"not a git checkout: {result.stderr.strip()}")
    return [line for line in result.stdout.split("\0") if line]


def test_no_tracked_file_is_ignored() -> None:
    ignored = _git("ls-files", "-z", "--cached", "--ignored", "--exclude-standard")
    assert ignored == [], f"tracked but ignored by .gitignore: {ignored[:20]}"


def test_no_tracked_file_is_over_one_mebibyte() -> None:
    too_big = [
        path
        for path in _git("ls-files", "-z")
        if (ROOT / path).is_file() and (ROOT / path).stat().st_size > MAX_TRACKED_BYTES
    ]
    assert too_big == [], f"tracked files over 1 MiB: {too_big}"


def _lock_pins(lock: str) -> dict[str, tuple[str, int]]:
    """name -> (version, number of hashes) for every requirement of a pip-compile lock file."""
    pins: dict[str, tuple[str, int]] = {}
    current = ""
    for line in (ROOT / lock).read_text().splitlines():
        if "==" in line and not line.startswith((" ", "#")):
            name, version = line.split(" ", 1)[0].split("==")
            current = name.lower().replace("_", "-")
            pins[current] = (version, 0)
        elif line.strip().startswith("--hash=sha256:") and current:
            version, hashes = pins[current]
            pins[current] = (version, hashes + 1)
    return pins


def _pyproject_pins(*, extra: str | None) -> dict[str, str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = project["optional-dependencies"][extra] if extra else project["dependencies"]
    return {
        name.lower().replace("_", "-"): version
        for name, version in (requirement.split("==") for requirement in requirements)
    }


@pytest.mark.parametrize(
    ("lock", "extras"),
    [("requirements/runtime.txt", (None,)), ("requirements/dev.txt", (None, "dev"))],
)
def test_lock_matches_pyproject_and_hashes_every_package(
    lock: str, extras: tuple[str | None, ...]
) -> None:
    pins = _lock_pins(lock)
    unhashed = sorted(name for name, (_, hashes) in pins.items() if hashes == 0)
    assert unhashed == [], f"{lock}: no hash for {unhashed}"
    for extra in extras:
        for name, version in _pyproject_pins(extra=extra).items():
            assert pins.get(name, ("missing", 0))[0] == version, (
                f"{lock} has {name} {pins.get(name)}, pyproject.toml pins {version}: run make lock"
            )
