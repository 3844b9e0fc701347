"""The pure routing modules (and kube/objects.py) import no I/O library, in a fresh interpreter."""

from __future__ import annotations

import subprocess
import sys

import pytest

PURE_MODULES = [
    "receiver.routing.urls",
    "receiver.routing.semver",
    "receiver.routing.refs",
    "receiver.routing.paths",
    "receiver.routing.index",
    "receiver.routing.explain",
    "receiver.kube.objects",
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
