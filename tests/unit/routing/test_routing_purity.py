"""The pure routing modules (and kube/objects.py) import only the stdlib and pure siblings.

Checked on the source, so an import hidden inside a function counts too: anything outside
ALLOWED_RECEIVER (an I/O edge, the kube client) or FORBIDDEN (I/O libraries) fails.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
PURE_FILES = [
    "receiver/routing/urls.py",
    "receiver/routing/semver.py",
    "receiver/routing/refs.py",
    "receiver/routing/paths.py",
    "receiver/routing/index.py",
    "receiver/routing/explain.py",
    "receiver/routing/argocd.py",
    "receiver/routing/argocd_index.py",
    "receiver/kube/objects.py",
]
FORBIDDEN = ("aiohttp", "kubernetes_asyncio", "git", "structlog", "socket", "asyncio", "random")
ALLOWED_RECEIVER = ("receiver.events", "receiver.errors", "receiver.routing")


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


@pytest.mark.parametrize("relative", PURE_FILES)
def test_pure_module_imports_nothing_with_io(relative: str) -> None:
    modules = imported_modules(ROOT / relative)
    assert modules, "no imports found: wrong file?"
    bad = sorted(
        name
        for name in modules
        if name.split(".")[0] in FORBIDDEN
        or (name.startswith("receiver") and not name.startswith(ALLOWED_RECEIVER))
    )
    assert bad == []
