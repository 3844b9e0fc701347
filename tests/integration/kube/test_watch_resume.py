"""Watches survive the API server: resume after a restart, re-list after 410 Gone, and report
objects deleted while they were away."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from receiver.config import WatchSettings
from receiver.events import ObjectRef
from receiver.kube import watching
from receiver.kube.client import KubeClient
from receiver.kube.patching import LiveCluster, OwnPatches
from receiver.objects import raw, resources
from tests import envtest
from tests.support import faultproxy
from tests.support.running import eventually, kube

FAST = WatchSettings(backoff_initial_s=0.05, backoff_max_s=0.5, watch_timeout_s=30)
GITREPOS = "/apis/source.toolkit.fluxcd.io/v1/namespaces/{ns}/gitrepositories"


class Seen:
    """What the watch reported, by object name."""

    def __init__(self) -> None:
        self.names: dict[str, str] = {}
        self.events: list[tuple[str, str]] = []

    def __call__(self, event: str, obj: dict[str, Any]) -> None:
        name = obj["metadata"]["name"]
        self.events.append((event, name))
        if event == raw.DELETED:
            self.names.pop(name, None)
        else:
            self.names[name] = obj["spec"]["url"]


@contextlib.asynccontextmanager
async def watching_repos(
    kubeconfig: Any, namespace: str, *, own_patches: OwnPatches | None = None
) -> AsyncIterator[tuple[Seen, watching.WatchState]]:
    client = await KubeClient.connect(kubeconfig=kubeconfig)
    seen, state = Seen(), watching.WatchState()
    task = asyncio.create_task(
        watching.watch_forever(
            client=client,
            resource=resources.GIT_REPOSITORY,
            on_event=seen,
            settings=FAST,
            state=state,
            namespace=namespace,
            own_patches=own_patches,
        )
    )
    try:
        await asyncio.wait_for(state.synced.wait(), timeout=20)
        yield seen, state
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await client.close()


async def make_repo(
    server: envtest.KubeTestServer, namespace: str, name: str, url: str = "https://a/x"
) -> None:
    await kube(
        server,
        "POST",
        GITREPOS.format(ns=namespace),
        body={
            "apiVersion": "source.toolkit.fluxcd.io/v1",
            "kind": "GitRepository",
            "metadata": {"name": name},
            "spec": {"url": url, "interval": "1m"},
        },
    )


async def current(seen: Seen) -> dict[str, str]:
    return dict(seen.names)


async def test_watch_lists_then_streams_changes(
    kube_server: envtest.KubeTestServer, namespace: str
) -> None:
    await make_repo(kube_server, namespace, "before")
    async with watching_repos(kube_server.kubeconfig_path, namespace) as (seen, _):
        assert seen.names == {"before": "https://a/x"}
        await make_repo(kube_server, namespace, "after")
        await kube(
            kube_server,
            "PATCH",
            GITREPOS.format(ns=namespace) + "/before",
            body={"spec": {"url": "https://b/y"}},
            content_type="application/merge-patch+json",
        )
        await kube(kube_server, "DELETE", GITREPOS.format(ns=namespace) + "/after")
        await eventually(lambda: current(seen), check=lambda n: n == {"before": "https://b/y"})
        assert ("DELETED", "after") in seen.events


async def test_the_echo_of_our_own_reconcile_patch_is_skipped_and_nothing_else(
    kube_server: envtest.KubeTestServer, namespace: str
) -> None:
    await make_repo(kube_server, namespace, "app")
    own = OwnPatches()
    async with watching_repos(kube_server.kubeconfig_path, namespace, own_patches=own) as (
        seen,
        _,
    ):
        client = await KubeClient.connect(kubeconfig=kube_server.kubeconfig_path)
        try:
            cluster = LiveCluster(client, own_patches=own)
            target = ObjectRef("source.toolkit.fluxcd.io/v1", "GitRepository", namespace, "app")
            await cluster.request_reconcile(target, requested_at="2026-11-30T10:00:00.0Z")
            await eventually(lambda: asyncio.sleep(0, len(own)), check=lambda n: n == 0)
            # Someone else's change right after ours is delivered as usual.
            await kube(
                kube_server,
                "PATCH",
                GITREPOS.format(ns=namespace) + "/app",
                body={"spec": {"url": "https://b/y"}},
                content_type="application/merge-patch+json",
            )
            await eventually(lambda: current(seen), check=lambda n: n == {"app": "https://b/y"})
        finally:
            await client.close()
    assert seen.events == [("ADDED", "app"), ("MODIFIED", "app")]


async def test_watch_resumes_after_api_server_restart(
    kube_server: envtest.KubeTestServer, namespace: str
) -> None:
    await make_repo(kube_server, namespace, "one")
    async with watching_repos(kube_server.kubeconfig_path, namespace) as (seen, state):
        # From this thread, not a worker thread: the child dies with the thread that forked it.
        kube_server.stop_apiserver()
        kube_server.start_apiserver()
        await make_repo(kube_server, namespace, "two")
        await eventually(
            lambda: current(seen), check=lambda n: set(n) == {"one", "two"}, timeout_s=60
        )
        assert state.reconnects + state.relists >= 1


async def test_410_gone_triggers_a_relist_that_reports_missed_deletions(
    kube_server: envtest.KubeTestServer, namespace: str, fault_proxy: faultproxy.FaultProxy
) -> None:
    await make_repo(kube_server, namespace, "stays")
    await make_repo(kube_server, namespace, "goes")
    async with watching_repos(fault_proxy.kubeconfig_path, namespace) as (seen, state):
        assert set(seen.names) == {"stays", "goes"}
        # The next watch request answers 410, as when its resourceVersion is compacted away.
        fault_proxy.fail_next(1, status=410, match=lambda method, path: method == "GET")
        await kube(kube_server, "DELETE", GITREPOS.format(ns=namespace) + "/goes")
        await asyncio.wait_for(fault_proxy.wait_for_stream(), timeout=10)
        await fault_proxy.drop_streams()
        await eventually(lambda: current(seen), check=lambda n: set(n) == {"stays"})
        assert state.relists >= 1 or ("DELETED", "goes") in seen.events
        await make_repo(kube_server, namespace, "new")
        await eventually(lambda: current(seen), check=lambda n: set(n) == {"stays", "new"})
