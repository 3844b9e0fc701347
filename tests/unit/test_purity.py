"""The sans-I/O boundary: every pure module, listed here, imports nothing that does I/O.

Every module of the package is either in PURE (with its whole package where a package is pure)
or in EDGES with the reason it may do I/O, so a new module fails until it is classified.
Two checks, one list:
- on the source (an import hidden inside a function counts): a pure module imports no I/O,
  clock or randomness module, and of this package only other pure modules;
- in a fresh interpreter (so another test's imports cannot hide one): importing every pure
  module loads none of the I/O libraries, however deep the import.
"""

from __future__ import annotations

import ast
import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import receiver

ROOT = Path(__file__).resolve().parents[2]

PURE_PACKAGES = ("receiver.objects", "receiver.routing", "receiver.sources")
"""Every module in these packages is pure (a new one is covered just by being added)."""
PURE_MODULES = frozenset(
    {
        "receiver",
        "receiver.dedupe",
        "receiver.errors",
        "receiver.events",
        "receiver.fastjson",
        "receiver.inspector",
        "receiver.inspector.journal",
        "receiver.inspector.views",
        "receiver.samples",
        "receiver.poller",
        "receiver.poller.refs",
        "receiver.status",
        "receiver.status.argocd",
        "receiver.status.flux",
        "receiver.status.gitea",
        "receiver.status.github",
        "receiver.status.gitlab",
        "receiver.status.journey",
        "receiver.status.model",
        "receiver.status.replies",
        "receiver.status.requested",
        "receiver.status.scope",
        "receiver.trigger",
        "receiver.trigger.pending",
    }
)
EDGES = {
    "receiver.filtering": "reads the objects a filtered Receiver names from the API server",
    "receiver.expressions": "no I/O of its own, but importing the cel package loads its CLI "
    "(typer, prompt_toolkit: asyncio); pure modules get the compiler injected",
    "receiver.app": "wiring: starts servers, watches and workers",
    "receiver.backoff": "the retry loop awaits the call and the sleep it is given",
    "receiver.cli": "command line: reads files, runs the service, posts samples",
    "receiver.config": "reads the settings file",
    "receiver.http": "the aiohttp.web edge",
    "receiver.http.connections": "the aiohttp.web edge",
    "receiver.http.health": "the aiohttp.web edge",
    "receiver.http.inspector": "the aiohttp.web edge",
    "receiver.inspector.capture": "no I/O of its own; reads the pipeline's Delivery record "
    "(receiver.pipeline is an edge)",
    "receiver.inspector.tracker": "hooks into the reconcile workers",
    "receiver.http.limits": "the aiohttp.web edge",
    "receiver.http.server": "the aiohttp.web edge",
    "receiver.kube": "the Kubernetes edge",
    "receiver.kube.argocd": "the Kubernetes edge: asks whether Argo CD's kinds are served",
    "receiver.kube.client": "the Kubernetes edge",
    "receiver.kube.inventory": "reads the dry-run inventory's files",
    "receiver.kube.leader": "the Kubernetes edge",
    "receiver.kube.patching": "the Kubernetes edge",
    "receiver.kube.recorder": "the Kubernetes edge",
    "receiver.kube.watching": "the Kubernetes edge",
    "receiver.logs": "configures log output",
    "receiver.metrics": "the process-wide Prometheus registry",
    "receiver.oidc_keys": "fetches signing keys over HTTP",
    "receiver.pipeline": "drives a delivery through the stages, awaiting the key caches",
    "receiver.poller.credentials": "writes temporary credential files",
    "receiver.poller.runner": "runs git",
    "receiver.status.reporter": "posts to the forges",
    "receiver.status.service": "runs the reporter",
    "receiver.trigger.worker": "the reconcile workers",
}

IO_LIBRARIES = ("aiohttp", "kubernetes_asyncio", "git", "asyncio", "prometheus_client", "yarl")
"""Must not be loaded at all, however deep, by importing the pure modules."""
FORBIDDEN_IMPORTS = (
    *IO_LIBRARIES,
    "socket",
    "ssl",
    "selectors",
    "subprocess",
    "threading",
    "concurrent",
    "multiprocessing",
    "http",
    "urllib.request",
    "tempfile",
    "shutil",
    "os",
    "io",
    "pathlib",
    "logging",
    "structlog",
    "time",
    "random",
    "secrets",
)
"""Must not be imported by a pure module's own source: I/O, clock or randomness."""


def all_modules() -> list[str]:
    names = ["receiver"]
    for info in pkgutil.walk_packages(receiver.__path__, prefix="receiver."):
        names.append(info.name)
    return sorted(names)


def is_pure(name: str) -> bool:
    return name in PURE_MODULES or any(
        name == package or name.startswith(f"{package}.") for package in PURE_PACKAGES
    )


MODULES = frozenset(all_modules())
PURE = sorted(name for name in MODULES if is_pure(name))


def source_of(name: str) -> Path:
    path = ROOT / Path(*name.split("."))
    return path / "__init__.py" if path.is_dir() else path.with_suffix(".py")


def imports_of(name: str) -> set[str]:
    tree = ast.parse(source_of(name).read_text(), filename=str(source_of(name)))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def test_every_module_is_pure_or_a_named_edge() -> None:
    unclassified = sorted(name for name in MODULES if not is_pure(name) and name not in EDGES)
    both = sorted(name for name in EDGES if is_pure(name))
    stale = sorted((set(EDGES) | PURE_MODULES) - MODULES)
    assert (unclassified, both, stale) == ([], [], [])


def test_the_list_covers_the_known_pure_core() -> None:
    assert {
        "receiver.objects.raw",
        "receiver.objects.resources",
        "receiver.routing.discovery",
        "receiver.routing.records",
        "receiver.routing.images",
        "receiver.sources.github",
        "receiver.status.flux",
        "receiver.poller.refs",
    } <= set(PURE)


@pytest.mark.parametrize("name", PURE)
def test_pure_module_source_imports_nothing_with_io(name: str) -> None:
    imported = imports_of(name)
    io = sorted(
        module
        for module in imported
        if any(module == bad or module.startswith(f"{bad}.") for bad in FORBIDDEN_IMPORTS)
    )
    own_edges = sorted(module for module in imported & MODULES if not is_pure(module))
    assert (io, own_edges) == ([], [])


_PROBE = """
import importlib, json, sys
bad = tuple(sys.argv[1].split(","))
loaded = {}
for name in sys.argv[2:]:
    importlib.import_module(name)
    new = sorted(m for m in sys.modules if m.split(".")[0] in bad and m not in loaded)
    loaded.update(dict.fromkeys(new, name))
print(json.dumps(loaded))
"""


def test_pure_modules_load_no_io_library_in_a_fresh_interpreter() -> None:
    """One interpreter imports them in turn: a library that appears is charged to the module
    whose import loaded it."""
    result = subprocess.run(
        [sys.executable, "-c", _PROBE, ",".join(IO_LIBRARIES), *PURE],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {}
