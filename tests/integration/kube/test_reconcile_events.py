"""ReconcileRequested Events and patch outcomes in the journal, against the real API server.

The real App (admin kubeconfig) patches through its reconcile queue; the tracker settles the
journal's candidates from what the workers report, and each landed patch becomes a core/v1
Event that the field selectors of `kubectl describe` (kind, name, namespace, uid) and
`flux events` (kind, name) find. A deleted object is a real 404: recorded as not_found, no Event.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import urlencode

import pytest

from receiver.app import App
from receiver.events import ObjectRef
from receiver.inspector.journal import Candidate, Decision, Entry, ObjectKey, PatchState
from tests import envtest
from tests.support import faultproxy
from tests.support.running import kube, running_app

SOURCE_V1 = "source.toolkit.fluxcd.io/v1"
GITREPOS = "/apis/source.toolkit.fluxcd.io/v1/namespaces/{ns}/gitrepositories"


@pytest.fixture
async def app(kube_server: envtest.KubeTestServer) -> AsyncIterator[App]:
    async with running_app(
        kubeconfig=kube_server.kubeconfig_path, inspector={"replica": "replica-a"}
    ) as running:
        yield running


async def make_repo(server: envtest.KubeTestServer, namespace: str, name: str) -> str:
    created = await kube(
        server,
        "POST",
        GITREPOS.format(ns=namespace),
        body={
            "apiVersion": SOURCE_V1,
            "kind": "GitRepository",
            "metadata": {"name": name},
            "spec": {"url": "https://github.com/org/fleet", "interval": "1m"},
        },
    )
    return str(created["metadata"]["uid"])


def delivery(namespace: str, *names: str, commit: str) -> Entry:
    return Entry(
        received_at_s=1_700_000_000.0,
        endpoint="/webhooks/github",
        source="github",
        http_status=200,
        outcome="accepted",
        verification="verified",
        latency_ms=1.0,
        event="push",
        delivery_id=f"delivery-{commit[:4]}",
        repository="github.com/org/fleet",
        ref="refs/heads/main",
        commit=commit,
        candidates=[
            Candidate(
                key=ObjectKey("GitRepository", namespace, name),
                decision=Decision.RECONCILE,
                reason="branch main matches",
                patch=PatchState.QUEUED,
            )
            for name in names
        ],
    )


async def events_for(server: envtest.KubeTestServer, in_ns: str, **fields: str) -> list[dict]:
    """Events in `in_ns` whose involvedObject has these fields, as kubectl and flux ask."""
    selector = ",".join(f"involvedObject.{key}={value}" for key, value in fields.items())
    query = urlencode({"fieldSelector": selector})
    listing = await kube(server, "GET", f"/api/v1/namespaces/{in_ns}/events?{query}")
    return list(listing["items"])


async def test_patched_object_gets_an_event_and_a_deleted_one_is_not_found(
    kube_server: envtest.KubeTestServer, namespace: str, app: App
) -> None:
    uid = await make_repo(kube_server, namespace, "fleet")
    entry = app.journal.add(delivery(namespace, "fleet", "gone", commit="a1" * 20))
    app.queue.request_all(
        [
            ObjectRef(SOURCE_V1, "GitRepository", namespace, "fleet"),
            ObjectRef(SOURCE_V1, "GitRepository", namespace, "gone"),
        ],
        reason="webhooks/github",
    )
    await app.queue.settle()
    assert app.events is not None
    await app.events.settle()

    fleet, gone = entry.candidates
    assert (fleet.patch, fleet.attempts, fleet.error) == (PatchState.PATCHED, 1, None)
    assert gone.patch is PatchState.NOT_FOUND
    assert gone.error is not None and "404" in gone.error
    assert entry.failed

    # What `kubectl describe gitrepository fleet` asks for: kind, name, namespace and uid.
    described = await events_for(
        kube_server, namespace, kind="GitRepository", name="fleet", namespace=namespace, uid=uid
    )
    assert len(described) == 1
    (event,) = described
    assert event["reason"] == "ReconcileRequested"
    assert event["type"] == "Normal"
    assert event["message"] == (
        "reconcile requested by github push, repository github.com/org/fleet, "
        f"ref refs/heads/main, commit {'a1' * 20}, delivery delivery-a1a1"
    )
    assert event["involvedObject"]["apiVersion"] == SOURCE_V1
    assert event["source"]["component"] == "gitops-receiver"
    assert event["reportingInstance"] == "replica-a"
    # What `flux events --for GitRepository/fleet` asks for: kind and name.
    assert len(await events_for(kube_server, namespace, kind="GitRepository", name="fleet")) == 1
    assert await events_for(kube_server, namespace, kind="GitRepository", name="gone") == []
    assert app.metrics.kube_events.labels("created")._value.get() == 1
    assert app.metrics.kube_events.labels("failed")._value.get() == 0


async def test_requests_merged_into_one_patch_make_one_event_naming_the_newest(
    kube_server: envtest.KubeTestServer, namespace: str, app: App
) -> None:
    await make_repo(kube_server, namespace, "fleet")
    target = ObjectRef(SOURCE_V1, "GitRepository", namespace, "fleet")
    # One patch first, so the next requests are held by min_interval_s and merge.
    app.queue.request_all([target], reason="warm-up")
    await app.queue.settle()
    first = app.journal.add(delivery(namespace, "fleet", commit="b2" * 20))
    app.queue.request_all([target], reason="webhooks/github")
    second = app.journal.add(delivery(namespace, "fleet", commit="c3" * 20))
    app.queue.request_all([target], reason="webhooks/github")
    await app.queue.settle()
    assert app.events is not None
    await app.events.settle()
    assert first.candidates[0].patch is second.candidates[0].patch is PatchState.PATCHED
    messages = sorted(e["message"] for e in await events_for(kube_server, namespace, name="fleet"))
    assert messages == [
        "reconcile requested by github push, repository github.com/org/fleet, ref "
        f"refs/heads/main, commit {'c3' * 20}, delivery delivery-c3c3 "
        "(merged with 1 earlier request(s))",
        "reconcile requested by gitops-receiver: warm-up",
    ]


async def test_retries_and_a_refusal_are_recorded_with_their_attempts(
    kube_server: envtest.KubeTestServer, namespace: str, fault_proxy: faultproxy.FaultProxy
) -> None:
    """Through the fault proxy: two 503s then success, and a 403 that is never retried."""
    await make_repo(kube_server, namespace, "fleet")
    await make_repo(kube_server, namespace, "locked")
    fault_proxy.fail_next(
        2, status=503, match=lambda method, path: method == "PATCH" and path.endswith("/fleet")
    )
    fault_proxy.fail_next(
        1, status=403, match=lambda method, path: method == "PATCH" and path.endswith("/locked")
    )
    async with running_app(
        kubeconfig=fault_proxy.kubeconfig_path,
        trigger={"retry_initial_s": 0.01, "retry_max_s": 0.02},
    ) as app:
        entry = app.journal.add(delivery(namespace, "fleet", "locked", commit="d4" * 20))
        app.queue.request_all(
            [
                ObjectRef(SOURCE_V1, "GitRepository", namespace, "fleet"),
                ObjectRef(SOURCE_V1, "GitRepository", namespace, "locked"),
            ],
            reason="webhooks/github",
        )
        await app.queue.settle()
    fleet, locked = entry.candidates
    assert (fleet.patch, fleet.attempts, fleet.error) == (PatchState.PATCHED, 3, None)
    assert (locked.patch, locked.attempts) == (PatchState.REJECTED, 1)
    assert locked.error is not None and "403" in locked.error
    assert entry.failed
