"""Reconcile queue against the real API server behind the fault proxy: merge patches,
collapse, retries on 5xx/429, no retry on 404, the give-up path, and the interval hold that
Flux having handled the last patch releases."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from receiver.config import TriggerSettings
from receiver.errors import QueueDraining
from receiver.events import ObjectRef
from receiver.kube.client import KubeClient
from receiver.kube.patching import LiveCluster
from receiver.metrics import Metrics
from receiver.trigger.worker import ReconcileQueue
from tests import envtest
from tests.support import faultproxy
from tests.support.running import kube

GITREPOS = "/apis/source.toolkit.fluxcd.io/v1/namespaces/{ns}/gitrepositories"


async def no_wait(_seconds: float) -> None:
    """Backoff sleeps are skipped: the retry count, not time, is under test."""


@pytest.fixture
async def proxied_client(fault_proxy: faultproxy.FaultProxy) -> AsyncIterator[KubeClient]:
    client = await KubeClient.connect(kubeconfig=fault_proxy.kubeconfig_path)
    try:
        yield client
    finally:
        await client.close()


def make_queue(client: KubeClient, **settings: float) -> tuple[ReconcileQueue, Metrics]:
    settings.setdefault("min_interval_s", 0)
    metrics = Metrics()
    queue = ReconcileQueue(
        cluster=LiveCluster(client),
        settings=TriggerSettings(workers=2, drain_timeout_s=20, **settings),
        metrics=metrics,
        sleep=no_wait,
    )
    return queue, metrics


async def make_repo(server: envtest.KubeTestServer, namespace: str, name: str) -> ObjectRef:
    await kube(
        server,
        "POST",
        GITREPOS.format(ns=namespace),
        body={
            "apiVersion": "source.toolkit.fluxcd.io/v1",
            "kind": "GitRepository",
            "metadata": {"name": name},
            "spec": {"url": "https://example.com/x", "interval": "1m"},
        },
    )
    return ObjectRef("source.toolkit.fluxcd.io/v1", "GitRepository", namespace, name)


def patches(proxy: faultproxy.FaultProxy, name: str) -> list[faultproxy.RecordedRequest]:
    return [r for r in proxy.requests_matching("PATCH", f"/gitrepositories/{name}")]


async def test_requests_waiting_together_collapse_into_one_merge_patch(
    kube_server: envtest.KubeTestServer,
    namespace: str,
    fault_proxy: faultproxy.FaultProxy,
    proxied_client: KubeClient,
) -> None:
    ref = await make_repo(kube_server, namespace, "fleet")
    queue, metrics = make_queue(proxied_client)
    for _ in range(50):
        queue.request_all([ref], reason="test")
    assert queue.depth == 1
    queue.start()
    await queue.drain()
    (patch,) = patches(fault_proxy, "fleet")
    assert patch.content_type == "application/merge-patch+json"
    assert set(patch.json()["metadata"]["annotations"]) == {"reconcile.fluxcd.io/requestedAt"}
    assert metrics.reconcile_requests.labels("GitRepository", "collapsed")._value.get() == 49
    assert metrics.reconcile_requests.labels("GitRepository", "patched")._value.get() == 1


@pytest.mark.parametrize(("status", "retry_after"), [(500, None), (503, None), (429, 1)])
async def test_transient_errors_are_retried_until_the_patch_lands(
    kube_server: envtest.KubeTestServer,
    namespace: str,
    fault_proxy: faultproxy.FaultProxy,
    proxied_client: KubeClient,
    status: int,
    retry_after: int | None,
) -> None:
    ref = await make_repo(kube_server, namespace, "fleet")
    fault_proxy.fail_next(
        3, status=status, retry_after=retry_after, match=lambda method, path: method == "PATCH"
    )
    queue, metrics = make_queue(proxied_client)
    queue.start()
    queue.request_all([ref], reason="test")
    await queue.drain()
    tried = patches(fault_proxy, "fleet")
    assert [r.injected_status for r in tried] == [status, status, status, None]
    assert metrics.patch_retries.labels("GitRepository")._value.get() == 3
    live = await kube(kube_server, "GET", GITREPOS.format(ns=namespace) + "/fleet")
    assert "reconcile.fluxcd.io/requestedAt" in live["metadata"]["annotations"]


async def test_missing_target_is_counted_once_and_not_retried(
    namespace: str, fault_proxy: faultproxy.FaultProxy, proxied_client: KubeClient
) -> None:
    queue, metrics = make_queue(proxied_client)
    queue.start()
    queue.request_all(
        [ObjectRef("source.toolkit.fluxcd.io/v1", "GitRepository", namespace, "ghost")],
        reason="test",
    )
    await queue.drain()
    assert len(patches(fault_proxy, "ghost")) == 1
    assert metrics.reconcile_requests.labels("GitRepository", "not_found")._value.get() == 1


async def test_persistent_failure_gives_up_with_a_metric(
    kube_server: envtest.KubeTestServer,
    namespace: str,
    fault_proxy: faultproxy.FaultProxy,
    proxied_client: KubeClient,
) -> None:
    ref = await make_repo(kube_server, namespace, "fleet")
    fault_proxy.fail_next(100, status=500, match=lambda method, path: method == "PATCH")
    queue, metrics = make_queue(proxied_client, retry_attempts=4)
    queue.start()
    queue.request_all([ref], reason="test")
    await queue.drain()
    assert len(patches(fault_proxy, "fleet")) == 4
    assert metrics.reconcile_requests.labels("GitRepository", "failed")._value.get() == 1


async def test_draining_queue_refuses_new_requests(proxied_client: KubeClient) -> None:
    queue, _ = make_queue(proxied_client)
    queue.start()
    await queue.drain()
    with pytest.raises(QueueDraining, match="shutting down"):
        queue.request_all([ObjectRef("v1", "GitRepository", "a", "b")], reason="test")


async def test_a_burst_after_a_patch_is_held_and_merged_into_one_more_patch(
    kube_server: envtest.KubeTestServer,
    namespace: str,
    fault_proxy: faultproxy.FaultProxy,
    proxied_client: KubeClient,
) -> None:
    ref = await make_repo(kube_server, namespace, "fleet")
    queue, metrics = make_queue(proxied_client, min_interval_s=0.5)
    queue.start()
    queue.request_all([ref], reason="first push")
    await queue.settle()
    assert len(patches(fault_proxy, "fleet")) == 1  # the first request is never held
    for _ in range(200):  # a burst while the object is inside its interval
        queue.request_all([ref], reason="burst")
    assert queue.depth == 1
    await queue.settle()
    assert len(patches(fault_proxy, "fleet")) == 2
    assert metrics.reconcile_requests.labels("GitRepository", "collapsed")._value.get() == 199
    await queue.drain()


async def test_a_held_request_goes_once_flux_handled_the_last_patch(
    kube_server: envtest.KubeTestServer,
    namespace: str,
    fault_proxy: faultproxy.FaultProxy,
    proxied_client: KubeClient,
) -> None:
    """The interval only holds while Flux has not handled the last patch: its
    `lastHandledReconcileAt` (as the GitRepository watch delivers it) releases the next push."""
    ref = await make_repo(kube_server, namespace, "fleet")
    queue, _ = make_queue(proxied_client, min_interval_s=60)
    queue.start()
    queue.request_all([ref], reason="first push")
    await queue.settle()
    obj = await kube(kube_server, "GET", GITREPOS.format(ns=namespace) + "/fleet")
    stamp = obj["metadata"]["annotations"]["reconcile.fluxcd.io/requestedAt"]
    queue.request_all([ref], reason="second push")
    assert queue.depth == 1  # held: Flux has not handled the first one yet
    queue.handled(ref, requested_at="an older request")
    assert queue.depth == 1
    queue.handled(ref, requested_at=stamp)
    await asyncio.wait_for(queue.settle(), 10)
    assert len(patches(fault_proxy, "fleet")) == 2
    queue.request_all([ref], reason="third push")  # the second is not handled yet: held again
    assert queue.depth == 1
    await queue.drain()


async def test_the_pollers_own_requests_do_not_count_as_recent(
    kube_server: envtest.KubeTestServer, namespace: str, proxied_client: KubeClient
) -> None:
    """The poller skips an object a webhook asked for within the interval; its own earlier
    request (`remember=False`) must not make it skip the next move of the remote."""
    ref = await make_repo(kube_server, namespace, "fleet")
    queue, _ = make_queue(proxied_client)
    queue.start()
    queue.request_all([ref], reason="poll", remember=False)
    assert queue.last_requested_ns(ref) is None
    queue.request_all([ref], reason="webhooks/github")
    assert queue.last_requested_ns(ref) is not None
    await queue.drain()
