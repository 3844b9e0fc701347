"""The pure status modules import no I/O library (checked in a fresh interpreter)."""

from __future__ import annotations

import subprocess
import sys

import pytest

PURE_MODULES = [
    "receiver.status.model",
    "receiver.status.replies",
    "receiver.status.flux",
    "receiver.status.argocd",
    "receiver.status.github",
    "receiver.status.gitlab",
    "receiver.status.gitea",
    "receiver.status.journey",
    "receiver.status.scope",
    "receiver.status.settings",
]
FORBIDDEN = ("aiohttp", "kubernetes_asyncio", "git")


@pytest.mark.parametrize("module", PURE_MODULES)
def test_pure_module_imports_no_io_library(module: str) -> None:
    code = (
        f"import sys, {module}\n"
        f"bad = [m for m in {FORBIDDEN!r} if m in sys.modules]\n"
        "print(','.join(bad))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == ""
