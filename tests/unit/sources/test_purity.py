"""The sans-I/O boundary: every pure module imports without aiohttp, kubernetes_asyncio or git.

Each module is imported in a fresh interpreter, so an import made by another test cannot hide
one. A new module under `receiver/sources/` is covered by existing.
"""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys

import pytest

import receiver.sources

EDGE_PACKAGES = ("aiohttp", "kubernetes_asyncio", "git")
PURE_MODULES = sorted(
    [f"receiver.sources.{info.name}" for info in pkgutil.iter_modules(receiver.sources.__path__)]
    + ["receiver.events", "receiver.errors"]
)
_PROBE = """
import importlib, json, sys
importlib.import_module(sys.argv[1])
print(json.dumps(sorted(name for name in sys.modules if name.split(".")[0] in sys.argv[2:])))
"""


def test_the_sources_package_is_listed() -> None:
    assert {
        "receiver.sources.github",
        "receiver.sources.registry",
        "receiver.sources.gitea",
    } <= set(PURE_MODULES)


@pytest.mark.parametrize("module", PURE_MODULES)
def test_pure_module_imports_no_edge_package(module: str) -> None:
    result = subprocess.run(
        [sys.executable, "-c", _PROBE, module, *EDGE_PACKAGES],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == []
