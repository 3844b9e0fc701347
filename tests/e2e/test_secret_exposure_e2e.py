"""Least exposure of Secrets (issue 17): only referenced Secrets are kept in memory.

Real API server, the real App. A Secret no Receiver, endpoint, forge token or (with the poller)
GitRepository names is dropped at the watch: its value is nowhere in the objects the App can
reach. A reference that appears later brings its Secret in (fetched), one that goes away
drops it, and a deleted Secret takes its Receiver out of service.
"""

from __future__ import annotations

import asyncio
import base64
import gc
import types
from collections.abc import AsyncIterator
from typing import Any

import pytest

from receiver.app import App
from tests import envtest
from tests.e2e.test_receiver_e2e import (
    NOTIFICATION,
    PUSH,
    TOKEN,
    github_headers,
    make_gitrepo,
    make_receiver,
    make_secret,
    post,
    ready_receiver,
)
from tests.support.running import eventually, kube, running_app

UNREFERENCED = "unreferenced-Value-7d1c0ffee"


async def github_receiver(
    server: envtest.KubeTestServer, namespace: str, name: str, *, secret: str = "webhook-token"
) -> None:
    """A github Receiver of GitRepository `fleet`, its token in Secret `secret`."""
    await make_receiver(
        server,
        namespace,
        name,
        type_name="github",
        resources=[{"kind": "GitRepository", "name": "fleet"}],
        secret=secret,
    )


@pytest.fixture
async def app(kube_server: envtest.KubeTestServer) -> AsyncIterator[App]:
    async with running_app(kubeconfig=kube_server.kubeconfig_path) as running:
        yield running


def reachable_text(root: object, needles: tuple[str, ...]) -> list[str]:
    """Every path from `root` to a str/bytes holding one of `needles`, following references
    through containers and instances (not through modules, classes, functions or the event
    loop, which lead to the whole interpreter, this test's own constants included)."""
    skipped = (
        types.ModuleType,
        type,
        types.FunctionType,
        types.BuiltinFunctionType,
        types.CodeType,
        asyncio.AbstractEventLoop,
    )
    encoded = tuple(n.encode() for n in needles) + tuple(
        base64.b64encode(n.encode()) for n in needles
    )
    seen: set[int] = set()
    found: list[str] = []
    queue: list[tuple[object, str]] = [(root, "app")]
    while queue and len(seen) < 2_000_000:
        obj, path = queue.pop()
        if id(obj) in seen or isinstance(obj, skipped):
            continue
        seen.add(id(obj))
        if isinstance(obj, str):
            if any(n in obj for n in needles) or any(e.decode() in obj for e in encoded):
                found.append(path)
            continue
        if isinstance(obj, bytes | bytearray | memoryview):
            data = bytes(obj)
            if any(e in data for e in encoded):
                found.append(path)
            continue
        for child in gc.get_referents(obj):
            queue.append((child, f"{path} > {type(child).__name__}"))
    return found


async def test_an_unreferenced_secret_is_not_kept(
    app: App, kube_server: envtest.KubeTestServer, namespace: str
) -> None:
    await make_secret(kube_server, namespace, "unrelated", UNREFERENCED)
    await make_secret(kube_server, namespace, "webhook-token", TOKEN)
    await make_gitrepo(kube_server, namespace, "fleet")
    await github_receiver(kube_server, namespace, "gh")
    path = await ready_receiver(app, kube_server, namespace, "gh")
    # Created after the unrelated one: once the App holds it, the watch has passed the other.
    await make_secret(kube_server, namespace, "later", "later-token")
    await github_receiver(kube_server, namespace, "later", secret="later")
    await ready_receiver(app, kube_server, namespace, "later", token="later-token")
    assert app.receivers.secret((namespace, "webhook-token")) is not None
    assert app.receivers.secret((namespace, "unrelated")) is None
    assert reachable_text(app, (UNREFERENCED,)) == []
    assert reachable_text(app, (TOKEN,))  # the walk does find what is kept
    assert (await post(app, path, PUSH, github_headers(PUSH)))[0] == 200

    # A Receiver that comes to name the dropped Secret brings it in (fetched by name).
    await github_receiver(kube_server, namespace, "now-referenced", secret="unrelated")
    await ready_receiver(app, kube_server, namespace, "now-referenced", token=UNREFERENCED)

    # ...and once no Receiver names it any more, it is dropped again.
    await kube(
        kube_server, "DELETE", f"{NOTIFICATION}/namespaces/{namespace}/receivers/now-referenced"
    )
    await eventually(lambda: _held(app, (namespace, "unrelated")), check=lambda held: not held)
    assert reachable_text(app, (UNREFERENCED,)) == []


async def test_a_deleted_secret_takes_its_receiver_out_of_service(
    app: App, kube_server: envtest.KubeTestServer, namespace: str
) -> None:
    await make_secret(kube_server, namespace, "webhook-token", TOKEN)
    await make_gitrepo(kube_server, namespace, "fleet")
    await github_receiver(kube_server, namespace, "gh")
    path = await ready_receiver(app, kube_server, namespace, "gh")
    await kube(kube_server, "DELETE", f"/api/v1/namespaces/{namespace}/secrets/webhook-token")
    receiver = await eventually(
        lambda: kube(kube_server, "GET", f"{NOTIFICATION}/namespaces/{namespace}/receivers/gh"),
        check=lambda r: _ready(r) == "False",
    )
    assert receiver["status"]["conditions"][0]["reason"] == "TokenNotFound"
    status, _ = await post(app, path, PUSH, github_headers(PUSH))
    assert status == 404  # the path was the token's: it is gone with it
    assert app.receivers.secret((namespace, "webhook-token")) is None


async def _held(app: App, key: tuple[str, str]) -> bool:
    return app.receivers.secret(key) is not None


def _ready(receiver: dict[str, Any]) -> str | None:
    for condition in receiver.get("status", {}).get("conditions") or []:
        if condition.get("type") == "Ready":
            return str(condition.get("status"))
    return None


async def test_namespace_scoped_mode_reads_secrets_only_in_its_namespaces(
    kube_server: envtest.KubeTestServer, namespace: str
) -> None:
    other = await asyncio.to_thread(kube_server.create_namespace)
    try:
        async with running_app(
            kubeconfig=kube_server.kubeconfig_path, secret_namespaces=[namespace]
        ) as app:
            for ns in (namespace, other):
                await make_secret(kube_server, ns, "webhook-token", TOKEN)
                await github_receiver(kube_server, ns, "gh")
            await ready_receiver(app, kube_server, namespace, "gh")
            outside = await eventually(
                lambda: kube(kube_server, "GET", f"{NOTIFICATION}/namespaces/{other}/receivers/gh"),
                check=lambda r: _ready(r) == "False",
            )
            assert outside["status"]["conditions"][0]["reason"] == "TokenNotFound"
            assert app.receivers.secret((other, "webhook-token")) is None
            assert [w.name for w in app._watches].count("secrets.core") == 1
    finally:
        await asyncio.to_thread(kube_server.delete_namespace, other)
