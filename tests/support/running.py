"""Run the real App in-process against the test API server, and small async helpers.

Test code only. Blocking API calls of `tests/envtest.py` go through a thread so the app,
which shares the event loop, keeps serving meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from receiver.app import App
from receiver.config import load
from receiver.kube.client import KubeClient
from tests import envtest

T = TypeVar("T")

LOOPBACK_PORTS = {
    "listen": "127.0.0.1:0",
    "health_listen": "127.0.0.1:0",
    "metrics_listen": "127.0.0.1:0",
}


@contextlib.asynccontextmanager
async def running_app(
    *, kubeconfig: Path | None, inventory: Path | None = None, **settings: Any
) -> AsyncIterator[App]:
    """A started App (ready: first lists done), stopped on exit. Each App campaigns for a
    Lease of its own unless `leader_election` is given, so tests never wait on each other."""
    options: dict[str, Any] = {
        **LOOPBACK_PORTS,
        "log_format": "console",
        "leader_election": {"lease_name": f"gitops-receiver-{uuid.uuid4().hex[:12]}"},
        **settings,
    }
    if inventory is not None:
        options["inventory"] = inventory
    config = load(config_file=None, overrides=options)
    client = await KubeClient.connect(kubeconfig=kubeconfig) if kubeconfig else None
    app = App(config, client=client)
    await app.start()
    try:
        await app.wait_ready(timeout_s=30)
        yield app
    finally:
        await app.stop()


async def kube(server: envtest.KubeTestServer, method: str, path: str, **kwargs: Any) -> Any:
    """One API call from a thread; raises unless it answered 2xx; returns the JSON body."""
    status, body = await asyncio.to_thread(server.request, method, path, **kwargs)
    if status >= 300:
        raise AssertionError(f"{method} {path}: HTTP {status}: {body}")
    return body


async def eventually(
    probe: Callable[[], Awaitable[T]], *, check: Callable[[T], bool], timeout_s: float = 20
) -> T:
    """Poll `probe` until `check(value)` holds (bounded); returns the last value."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        value = await probe()
        if check(value):
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {timeout_s}s; last value: {value!r}")
        await asyncio.sleep(0.05)
