"""`spec.resourceFilter` and `resources[].filter` (CEL) on the Receiver path, as Flux's own
documentation uses them, against the real API server."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from receiver.app import App
from tests import envtest
from tests.support.running import eventually, kube, running_app

TOKEN = "filter-token"
REQUESTED_AT = "reconcile.fluxcd.io/requestedAt"
IMAGES = "/apis/image.toolkit.fluxcd.io/v1/namespaces/{ns}/imagerepositories"
RECEIVERS = "/apis/notification.toolkit.fluxcd.io/v1/namespaces/{ns}/receivers"
# The body of the documented example (a GAR push relayed as JSON).
GAR = {
    "action": "INSERT",
    "digest": "us-east1-docker.pkg.dev/my-project/my-repo/hello-world@sha256:6ec128e26cd5",
    "tag": "us-east1-docker.pkg.dev/my-project/my-repo/hello-world:1.1",
}


@pytest.fixture
async def app(kube_server: envtest.KubeTestServer, namespace: str) -> AsyncIterator[App]:
    await kube(
        kube_server,
        "POST",
        f"/api/v1/namespaces/{namespace}/secrets",
        body={
            "metadata": {"name": "token"},
            "data": {"token": base64.b64encode(TOKEN.encode()).decode()},
        },
    )
    for name, labels, notes in (
        ("hello-world", {"registry": "gar", "environment": "production"}, {}),
        ("hello-world-staging", {"registry": "gar", "environment": "staging"}, {}),
        ("other", {"registry": "gar", "environment": "production"}, {"update-image": "x"}),
        ("unlabelled-hello-world", {}, {}),
    ):
        await kube(
            kube_server,
            "POST",
            IMAGES.format(ns=namespace),
            body={
                "apiVersion": "image.toolkit.fluxcd.io/v1",
                "kind": "ImageRepository",
                "metadata": {"name": name, "labels": labels, "annotations": notes},
                "spec": {"image": f"example.com/{name}", "interval": "10m"},
            },
        )
    async with running_app(
        kubeconfig=kube_server.kubeconfig_path, trigger={"min_interval_s": 0}
    ) as running:
        yield running


async def receiver(
    server: envtest.KubeTestServer, namespace: str, name: str, **spec: Any
) -> dict[str, Any]:
    await kube(
        server,
        "POST",
        RECEIVERS.format(ns=namespace),
        body={
            "apiVersion": "notification.toolkit.fluxcd.io/v1",
            "kind": "Receiver",
            "metadata": {"name": name},
            "spec": {"type": "generic", "secretRef": {"name": "token"}, **spec},
        },
    )
    found: dict[str, Any] = await eventually(
        lambda: kube(server, "GET", f"{RECEIVERS.format(ns=namespace)}/{name}"),
        check=lambda r: any(
            c.get("type") == "Ready" for c in r.get("status", {}).get("conditions") or []
        ),
    )
    return found


async def post(app: App, path: str, body: dict[str, Any]) -> tuple[int, Any]:
    url = f"http://127.0.0.1:{app.ports['webhook']}{path}"
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            url, data=json.dumps(body), headers={"Content-Type": "application/json"}
        ) as response,
    ):
        return response.status, await response.json(content_type=None)


async def reconciled(server: envtest.KubeTestServer, ns: str) -> set[str]:
    listing = await kube(server, "GET", IMAGES.format(ns=ns))
    return {
        item["metadata"]["name"]
        for item in listing["items"]
        if (item["metadata"].get("annotations") or {}).get(REQUESTED_AT)
    }


SELECT_GAR = {
    "apiVersion": "image.toolkit.fluxcd.io/v1",
    "kind": "ImageRepository",
    "name": "*",
    "matchLabels": {"registry": "gar"},
}


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (
            {"resourceFilter": "req.tag.contains(res.metadata.name)", "resources": [SELECT_GAR]},
            {"hello-world"},
        ),
        (
            {
                "resourceFilter": "req.tag.contains(res.metadata.name)",
                "resources": [
                    SELECT_GAR | {"filter": "res.metadata.labels['environment'] == 'production'"}
                ],
            },
            {"hello-world"},
        ),
        (
            {
                "resources": [
                    SELECT_GAR | {"filter": "res.metadata.labels['environment'] == 'staging'"},
                    {"kind": "ImageRepository", "name": "unlabelled-hello-world"},
                ]
            },
            {"hello-world-staging", "unlabelled-hello-world"},
        ),
        (
            {
                "resourceFilter": "has(res.metadata.annotations) && "
                "req.tag.split('/').last().value().split(':').first().value() == "
                "res.metadata.annotations['update-image']",
                "resources": [SELECT_GAR],
            },
            set(),
        ),
    ],
    ids=["documented-tag-filter", "stacked-with-per-resource", "per-resource-only", "annotation"],
)
async def test_filters_reconcile_only_what_they_accept(
    app: App,
    kube_server: envtest.KubeTestServer,
    namespace: str,
    spec: dict[str, Any],
    expected: set[str],
) -> None:
    found = await receiver(kube_server, namespace, "gar", **spec)
    status, answer = await post(app, found["status"]["webhookPath"], GAR)
    assert (status, answer) == (200, {"status": "accepted", "targets": len(expected)})
    await app.queue.settle()
    assert await reconciled(kube_server, namespace) == expected
    # The delivery inspector shows each object the filters refused, and which filter did.
    (delivery,) = app.journal.entries()
    decisions = {c.key.name: (c.decision.value, c.cause) for c in delivery.candidates}
    assert {name for name, d in decisions.items() if d == ("reconcile", None)} == expected
    refused = {name for name, d in decisions.items() if d == ("skip", "filter")}
    assert refused and not refused & expected
    assert all(
        c.reason.startswith("filter ") and c.reason.endswith(" is false")
        for c in delivery.candidates
        if c.cause == "filter"
    )


async def test_a_filter_that_fails_on_a_delivery_answers_422_after_queueing_the_others(
    app: App, kube_server: envtest.KubeTestServer, namespace: str
) -> None:
    """Flux requests every object its filters accept, then fails the request (500 there)."""
    found = await receiver(
        kube_server,
        namespace,
        "gar",
        resources=[
            {"kind": "ImageRepository", "name": "hello-world", "filter": "req.tag != ''"},
            {"kind": "ImageRepository", "name": "other", "filter": "req.missing == 'x'"},
        ],
    )
    status, answer = await post(app, found["status"]["webhookPath"], GAR)
    assert status == 422
    assert answer["error"].startswith("resource filter failed: ImageRepository/")
    assert "req.missing == 'x'" in answer["error"]
    await app.queue.settle()
    assert await reconciled(kube_server, namespace) == {"hello-world"}
    # The inspector shows the one it requested, patched, on a failed delivery.
    (delivery,) = app.journal.entries()
    assert (delivery.http_status, delivery.failed) == (422, True)
    assert [(c.key.name, c.patch) for c in delivery.candidates] == [("hello-world", "patched")]


async def test_an_invalid_filter_is_not_ready_and_refused(
    app: App, kube_server: envtest.KubeTestServer, namespace: str
) -> None:
    found = await receiver(
        kube_server,
        namespace,
        "broken",
        resourceFilter="claims.repository == 'x'",
        resources=[SELECT_GAR],
    )
    (ready,) = [c for c in found["status"]["conditions"] if c["type"] == "Ready"]
    assert (ready["status"], ready["reason"]) == ("False", "InvalidCELExpression")
    assert "undeclared reference to 'claims'" in ready["message"]
