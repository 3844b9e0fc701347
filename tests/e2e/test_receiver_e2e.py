"""The Receiver path end to end: real API server, the real App, deliveries over HTTP.

Every test creates Flux objects in a fresh namespace, lets the App's watches see them, sends a
delivery the way the forge would, and checks the outcome on the API server itself.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlencode

import aiohttp
import pytest

from receiver.app import App
from tests import envtest
from tests.support.running import eventually, kube, running_app

REQUESTED_AT = "reconcile.fluxcd.io/requestedAt"
SOURCE = "/apis/source.toolkit.fluxcd.io/v1"
NOTIFICATION = "/apis/notification.toolkit.fluxcd.io/v1"
TOKEN = "s3cr3t-token-value"

PUSH = json.dumps(
    {
        "ref": "refs/heads/main",
        "before": "1" * 40,
        "after": "2" * 40,
        "repository": {"clone_url": "https://github.com/org/fleet.git", "default_branch": "main"},
        "commits": [{"added": [], "modified": ["apps/a.yaml"], "removed": []}],
    }
).encode()


def flux_path(token: str, name: str, namespace: str) -> str:
    return "/hook/" + hashlib.sha256(f"{token}{name}{namespace}".encode()).hexdigest()


def github_headers(body: bytes, *, secret: str = TOKEN, event: str = "push") -> dict[str, str]:
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": event + "-" + digest[:12],
        "X-Hub-Signature-256": f"sha256={digest}",
        "Content-Type": "application/json",
    }


@pytest.fixture
async def app(kube_server: envtest.KubeTestServer) -> AsyncIterator[App]:
    async with running_app(kubeconfig=kube_server.kubeconfig_path) as running:
        yield running


async def post(
    app: App,
    path: str,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
    method: str = "POST",
) -> tuple[int, dict[str, Any]]:
    url = f"http://127.0.0.1:{app.ports['webhook']}{path}"
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, url, data=body, headers=headers or {}) as response,
    ):
        return response.status, await response.json(content_type=None)


async def make_secret(
    server: envtest.KubeTestServer, namespace: str, name: str, token: str
) -> None:
    await kube(
        server,
        "POST",
        f"/api/v1/namespaces/{namespace}/secrets",
        body={
            "metadata": {"name": name},
            "data": {"token": base64.b64encode(token.encode()).decode()},
        },
    )


async def make_receiver(
    server: envtest.KubeTestServer,
    namespace: str,
    name: str,
    *,
    type_name: str,
    resources: list[dict[str, Any]],
    events: list[str] | None = None,
    suspend: bool = False,
    secret: str = "webhook-token",
) -> None:
    spec: dict[str, Any] = {
        "type": type_name,
        "secretRef": {"name": secret},
        "resources": resources,
        "suspend": suspend,
    }
    if events is not None:
        spec["events"] = events
    await kube(
        server,
        "POST",
        f"{NOTIFICATION}/namespaces/{namespace}/receivers",
        body={
            "apiVersion": "notification.toolkit.fluxcd.io/v1",
            "kind": "Receiver",
            "metadata": {"name": name},
            "spec": spec,
        },
    )


async def make_gitrepo(
    server: envtest.KubeTestServer, namespace: str, name: str, labels: dict[str, str] | None = None
) -> None:
    await kube(
        server,
        "POST",
        f"{SOURCE}/namespaces/{namespace}/gitrepositories",
        body={
            "apiVersion": "source.toolkit.fluxcd.io/v1",
            "kind": "GitRepository",
            "metadata": {"name": name, "labels": labels or {}},
            "spec": {
                "url": "https://github.com/org/fleet",
                "interval": "10m",
                "ref": {"branch": "main"},
            },
        },
    )


async def requested_at(server: envtest.KubeTestServer, path: str) -> str | None:
    obj = await kube(server, "GET", path)
    return (obj["metadata"].get("annotations") or {}).get(REQUESTED_AT)


async def ready_receiver(
    app: App, server: envtest.KubeTestServer, namespace: str, name: str, token: str = TOKEN
) -> str:
    """Wait until the App serves the receiver's path and has written its status; returns the path."""
    path = flux_path(token, name, namespace)
    await eventually(
        lambda: kube(server, "GET", f"{NOTIFICATION}/namespaces/{namespace}/receivers/{name}"),
        check=lambda r: r.get("status", {}).get("webhookPath") == path,
    )
    return path


async def test_status_is_written_like_flux_and_follows_the_secret(
    app: App, kube_server: envtest.KubeTestServer, namespace: str
) -> None:
    await make_receiver(
        kube_server,
        namespace,
        "gh",
        type_name="github",
        resources=[{"kind": "GitRepository", "name": "fleet"}],
    )
    url = f"{NOTIFICATION}/namespaces/{namespace}/receivers/gh"
    missing = await eventually(
        lambda: kube(kube_server, "GET", url),
        check=lambda r: bool(r.get("status", {}).get("conditions")),
    )
    (ready,) = missing["status"]["conditions"]
    assert ready["status"] == "False" and ready["reason"] == "TokenNotFound"
    # No token, no path: the path the token would give is unknown (404), as in Flux.
    assert (await post(app, flux_path(TOKEN, "gh", namespace), PUSH, github_headers(PUSH)))[
        0
    ] == 404

    await make_secret(kube_server, namespace, "webhook-token", TOKEN)
    path = await ready_receiver(app, kube_server, namespace, "gh")
    receiver = await kube(kube_server, "GET", url)
    (ready,) = receiver["status"]["conditions"]
    assert ready["status"] == "True" and ready["reason"] == "Succeeded" and path in ready["message"]
    assert receiver["status"]["observedGeneration"] == receiver["metadata"]["generation"]
    writes = app.metrics.status_writes.labels("written")._value.get()
    # A second look changes nothing: the status is not rewritten when it is already right.
    await kube(
        kube_server,
        "PATCH",
        f"/api/v1/namespaces/{namespace}/secrets/webhook-token",
        body={"metadata": {"labels": {"touched": "yes"}}},
        content_type="application/merge-patch+json",
    )
    await make_gitrepo(kube_server, namespace, "fleet")
    status, _ = await post(app, path, PUSH, github_headers(PUSH))
    assert status == 200
    assert app.metrics.status_writes.labels("written")._value.get() == writes


@pytest.mark.parametrize("content_type", ["application/json", "application/x-www-form-urlencoded"])
async def test_github_push_requests_reconcile_with_nanosecond_timestamp(
    app: App, kube_server: envtest.KubeTestServer, namespace: str, content_type: str
) -> None:
    """Both of GitHub's content types: a form body carries the JSON in its `payload` field
    (GitHub's default, read by Flux through go-github)."""
    await make_secret(kube_server, namespace, "webhook-token", TOKEN)
    await make_gitrepo(kube_server, namespace, "fleet")
    await make_receiver(
        kube_server,
        namespace,
        "gh",
        type_name="github",
        events=["push"],
        resources=[{"kind": "GitRepository", "name": "fleet"}],
    )
    path = await ready_receiver(app, kube_server, namespace, "gh")
    sent = PUSH if "json" in content_type else urlencode({"payload": PUSH.decode()}).encode()
    headers = github_headers(sent) | {"Content-Type": content_type}
    status, body = await post(app, path, sent, headers)
    assert (status, body) == (200, {"status": "accepted", "targets": 1})
    stamp = await eventually(
        lambda: requested_at(kube_server, f"{SOURCE}/namespaces/{namespace}/gitrepositories/fleet"),
        check=lambda value: value is not None,
    )
    assert stamp is not None and stamp.endswith("Z") and len(stamp.split(".")[1]) == 10


async def test_suspended_receiver_status_is_left_untouched(
    app: App, kube_server: envtest.KubeTestServer, namespace: str
) -> None:
    """notification-controller does not touch a suspended Receiver's status; its path is 503."""
    await make_secret(kube_server, namespace, "webhook-token", TOKEN)
    await make_receiver(
        kube_server,
        namespace,
        "paused",
        type_name="generic",
        resources=[{"kind": "GitRepository", "name": "fleet"}],
        suspend=True,
    )
    await make_receiver(
        kube_server,
        namespace,
        "witness",
        type_name="generic",
        resources=[{"kind": "GitRepository", "name": "fleet"}],
    )
    # One writer takes Receivers in the order they came: once "witness" is written, "paused"
    # was handled.
    await ready_receiver(app, kube_server, namespace, "witness")
    paused = await kube(
        kube_server, "GET", f"{NOTIFICATION}/namespaces/{namespace}/receivers/paused"
    )
    assert paused.get("status", {}).get("webhookPath") is None
    assert not paused.get("status", {}).get("conditions")
    status, _ = await post(app, flux_path(TOKEN, "paused", namespace))
    assert status == 503


@pytest.mark.parametrize(
    ("headers_for", "expected_status", "expected_text"),
    [
        (lambda body: github_headers(body, secret="wrong"), 401, "does not match"),
        (lambda body: {"X-GitHub-Event": "push"}, 401, "X-Hub-Signature-256 header missing"),
        (lambda body: github_headers(body, event="ping"), 200, "ping"),
        (lambda body: github_headers(body, event="issues"), 200, "not in spec.events"),
    ],
    ids=["bad-signature", "no-signature", "ping", "filtered-event"],
)
async def test_github_refusals_and_no_ops_never_patch(
    app: App,
    kube_server: envtest.KubeTestServer,
    namespace: str,
    headers_for: Any,
    expected_status: int,
    expected_text: str,
) -> None:
    await make_secret(kube_server, namespace, "webhook-token", TOKEN)
    await make_gitrepo(kube_server, namespace, "fleet")
    await make_receiver(
        kube_server,
        namespace,
        "gh",
        type_name="github",
        events=["push", "ping"],
        resources=[{"kind": "GitRepository", "name": "fleet"}],
    )
    path = await ready_receiver(app, kube_server, namespace, "gh")
    status, body = await post(app, path, PUSH, headers_for(PUSH))
    assert status == expected_status
    assert expected_text in json.dumps(body)
    assert TOKEN not in json.dumps(body)
    await app.queue.drain()
    assert (
        await requested_at(kube_server, f"{SOURCE}/namespaces/{namespace}/gitrepositories/fleet")
        is None
    )


async def test_sha1_signature_is_accepted(
    app: App, kube_server: envtest.KubeTestServer, namespace: str
) -> None:
    await make_secret(kube_server, namespace, "webhook-token", TOKEN)
    await make_gitrepo(kube_server, namespace, "fleet")
    await make_receiver(
        kube_server,
        namespace,
        "gh",
        type_name="github",
        resources=[{"kind": "GitRepository", "name": "fleet"}],
    )
    path = await ready_receiver(app, kube_server, namespace, "gh")
    sha1 = hmac.new(TOKEN.encode(), PUSH, hashlib.sha1).hexdigest()
    status, _ = await post(
        app, path, PUSH, {"X-GitHub-Event": "push", "X-Hub-Signature": f"sha1={sha1}"}
    )
    assert status == 200
    await eventually(
        lambda: requested_at(kube_server, f"{SOURCE}/namespaces/{namespace}/gitrepositories/fleet"),
        check=lambda value: value is not None,
    )


GITLAB_PUSH = json.dumps(
    {
        "object_kind": "push",
        "ref": "refs/heads/main",
        "before": "1" * 40,
        "after": "2" * 40,
        "project": {"git_http_url": "https://gitlab.com/g/fleet.git", "default_branch": "main"},
        "commits": [],
        "total_commits_count": 0,
    }
).encode()


@pytest.mark.parametrize(
    ("type_name", "events", "headers", "body", "expected"),
    [
        (
            "gitlab",
            ["Push Hook"],
            {"X-Gitlab-Token": TOKEN, "X-Gitlab-Event": "Push Hook"},
            GITLAB_PUSH,
            200,
        ),
        (
            "gitlab",
            ["Push Hook"],
            {"X-Gitlab-Token": "nope", "X-Gitlab-Event": "Push Hook"},
            GITLAB_PUSH,
            401,
        ),
        ("gitlab", [], {"X-Gitlab-Event": "Push Hook"}, GITLAB_PUSH, 401),
        (
            "gitlab",
            ["Tag Push Hook"],
            {"X-Gitlab-Token": TOKEN, "X-Gitlab-Event": "Push Hook"},
            GITLAB_PUSH,
            200,
        ),
        ("generic", [], {}, b"", 200),
        (
            "generic-hmac",
            [],
            {
                "X-Signature": "sha512="
                + hmac.new(TOKEN.encode(), b"{}", hashlib.sha512).hexdigest()
            },
            b"{}",
            200,
        ),
        (
            "generic-hmac",
            [],
            {"X-Signature": "sha1=" + hmac.new(TOKEN.encode(), b"{}", hashlib.sha1).hexdigest()},
            b"{}",
            200,
        ),
        ("generic-hmac", [], {"X-Signature": "sha256=00"}, b"{}", 401),
        ("generic-hmac", [], {"X-Signature": "md5=00"}, b"{}", 401),
        ("github", [], github_headers(b"{not json"), b"{not json", 400),
    ],
    ids=[
        "gitlab-ok",
        "gitlab-bad-token",
        "gitlab-no-token",
        "gitlab-filtered",
        "generic",
        "hmac-sha512",
        "hmac-sha1",
        "hmac-bad",
        "hmac-unknown-algo",
        "github-malformed",
    ],
)
async def test_receiver_types(
    app: App,
    kube_server: envtest.KubeTestServer,
    namespace: str,
    type_name: str,
    events: list[str],
    headers: dict[str, str],
    body: bytes,
    expected: int,
) -> None:
    await make_secret(kube_server, namespace, "webhook-token", TOKEN)
    await make_gitrepo(kube_server, namespace, "fleet")
    await make_receiver(
        kube_server,
        namespace,
        "r",
        type_name=type_name,
        events=events,
        resources=[{"kind": "GitRepository", "name": "fleet"}],
    )
    path = await ready_receiver(app, kube_server, namespace, "r")
    status, answer = await post(app, path, body, headers)
    assert status == expected, answer
    await app.queue.drain()
    patched = await requested_at(
        kube_server, f"{SOURCE}/namespaces/{namespace}/gitrepositories/fleet"
    )
    assert (patched is not None) == (answer.get("status") == "accepted")


async def test_http_errors_are_clear_and_never_500(
    kube_server: envtest.KubeTestServer, namespace: str
) -> None:
    async with running_app(kubeconfig=kube_server.kubeconfig_path, max_body_bytes=4096) as app:
        await make_secret(kube_server, namespace, "webhook-token", TOKEN)
        await make_receiver(
            kube_server,
            namespace,
            "paused",
            type_name="generic",
            suspend=True,
            resources=[{"kind": "GitRepository", "name": "fleet"}],
        )
        path = flux_path(TOKEN, "paused", namespace)
        await eventually(lambda: post(app, path), check=lambda answer: answer[0] == 503)
        assert await post(app, "/hook/" + "0" * 64) == (404, {"error": "no receiver at this path"})
        assert (await post(app, "/elsewhere"))[0] == 404
        assert await post(app, path, method="GET") == (405, {"error": "method not allowed"})
        status, body = await post(app, path, b"x" * 5000)
        assert status == 413 and "4096" in body["error"]


# The least each real Flux CRD accepts (the image kinds use the minimal CRDs: any spec).
VALID_SPECS: dict[str, dict[str, Any]] = {
    "GitRepository": {"url": "https://github.com/example/one", "interval": "10m"},
    "OCIRepository": {"url": "oci://ghcr.io/example/one", "interval": "10m"},
    "HelmRepository": {"url": "https://charts.example.com/", "interval": "10m"},
    "HelmChart": {
        "chart": "one",
        "interval": "10m",
        "sourceRef": {"kind": "HelmRepository", "name": "one"},
    },
    "Bucket": {"bucketName": "one", "endpoint": "s3.example.com", "interval": "10m"},
    "Kustomization": {
        "interval": "10m",
        "prune": False,
        "sourceRef": {"kind": "GitRepository", "name": "one"},
    },
    "HelmRelease": {
        "interval": "10m",
        "chart": {"spec": {"chart": "one", "sourceRef": {"kind": "HelmRepository", "name": "one"}}},
    },
}


async def test_all_flux_kinds_selectors_and_missing_targets(
    app: App, kube_server: envtest.KubeTestServer, namespace: str
) -> None:
    kinds = {
        "GitRepository": "/apis/source.toolkit.fluxcd.io/v1/namespaces/{ns}/gitrepositories",
        "OCIRepository": "/apis/source.toolkit.fluxcd.io/v1/namespaces/{ns}/ocirepositories",
        "HelmRepository": "/apis/source.toolkit.fluxcd.io/v1/namespaces/{ns}/helmrepositories",
        "HelmChart": "/apis/source.toolkit.fluxcd.io/v1/namespaces/{ns}/helmcharts",
        "Bucket": "/apis/source.toolkit.fluxcd.io/v1/namespaces/{ns}/buckets",
        "ImageRepository": "/apis/image.toolkit.fluxcd.io/v1beta2/namespaces/{ns}/imagerepositories",
        "ImagePolicy": "/apis/image.toolkit.fluxcd.io/v1beta2/namespaces/{ns}/imagepolicies",
        "ImageUpdateAutomation": "/apis/image.toolkit.fluxcd.io/v1beta2/namespaces/{ns}/imageupdateautomations",
        "Kustomization": "/apis/kustomize.toolkit.fluxcd.io/v1/namespaces/{ns}/kustomizations",
        "HelmRelease": "/apis/helm.toolkit.fluxcd.io/v2/namespaces/{ns}/helmreleases",
    }
    for kind, collection in kinds.items():
        api_version = collection.split("/")[2] + "/" + collection.split("/")[3]
        await kube(
            kube_server,
            "POST",
            collection.format(ns=namespace),
            body={
                "apiVersion": api_version,
                "kind": kind,
                "metadata": {"name": "one"},
                "spec": VALID_SPECS.get(kind, {}),
            },
        )
    await make_gitrepo(kube_server, namespace, "labelled-a", labels={"team": "a"})
    await make_gitrepo(kube_server, namespace, "labelled-b", labels={"team": "b"})
    await make_secret(kube_server, namespace, "webhook-token", TOKEN)
    resources = [{"kind": kind, "name": "one"} for kind in kinds]
    resources += [
        {"kind": "GitRepository", "name": "*", "matchLabels": {"team": "a"}},
        {"kind": "GitRepository", "name": "does-not-exist"},
    ]
    await make_receiver(kube_server, namespace, "all", type_name="generic", resources=resources)
    path = await ready_receiver(app, kube_server, namespace, "all")
    status, body = await post(app, path)
    assert (status, body["targets"]) == (200, 12)
    await app.queue.drain()
    for collection in kinds.values():
        assert await requested_at(kube_server, collection.format(ns=namespace) + "/one") is not None
    repos = f"{SOURCE}/namespaces/{namespace}/gitrepositories"
    assert await requested_at(kube_server, f"{repos}/labelled-a") is not None
    assert await requested_at(kube_server, f"{repos}/labelled-b") is None
    assert app.metrics.reconcile_requests.labels("GitRepository", "not_found")._value.get() == 1


async def test_cross_namespace_refs_refused_when_disallowed(
    kube_server: envtest.KubeTestServer, namespace: str
) -> None:
    other = kube_server.create_namespace()
    try:
        async with running_app(
            kubeconfig=kube_server.kubeconfig_path, no_cross_namespace_refs=True
        ) as app:
            await make_secret(kube_server, namespace, "webhook-token", TOKEN)
            await make_gitrepo(kube_server, namespace, "local")
            await make_gitrepo(kube_server, other, "remote")
            await make_receiver(
                kube_server,
                namespace,
                "r",
                type_name="generic",
                resources=[
                    {"kind": "GitRepository", "name": "local"},
                    {"kind": "GitRepository", "name": "remote", "namespace": other},
                ],
            )
            path = await ready_receiver(app, kube_server, namespace, "r")
            assert (await post(app, path))[1]["targets"] == 1
            await app.queue.drain()
            assert await requested_at(
                kube_server, f"{SOURCE}/namespaces/{namespace}/gitrepositories/local"
            )
            assert (
                await requested_at(
                    kube_server, f"{SOURCE}/namespaces/{other}/gitrepositories/remote"
                )
                is None
            )
            assert (
                app.metrics.reconcile_requests.labels("GitRepository", "refused")._value.get() == 1
            )
    finally:
        kube_server.delete_namespace(other)


async def test_gitlab_agent_request_replayed_exactly(
    app: App, kube_server: envtest.KubeTestServer, namespace: str
) -> None:
    """agentk (v16) creates Receiver gitlab-<name> (type generic) whose Secret
    gitlab-receiver-<name> has an empty token, reads status.webhookPath, and POSTs an empty body
    with no headers to webhook_receiver_url + that path; only a 200 counts as success."""
    await make_gitrepo(kube_server, namespace, "fleet")
    await make_secret(kube_server, namespace, "gitlab-receiver-fleet", "")
    await make_receiver(
        kube_server,
        namespace,
        "gitlab-fleet",
        type_name="generic",
        secret="gitlab-receiver-fleet",
        resources=[
            {
                "apiVersion": "source.toolkit.fluxcd.io/v1",
                "kind": "GitRepository",
                "name": "fleet",
                "namespace": namespace,
            }
        ],
    )
    path = await ready_receiver(app, kube_server, namespace, "gitlab-fleet", token="")
    assert path == "/hook/" + hashlib.sha256(f"gitlab-fleet{namespace}".encode()).hexdigest()
    url = f"http://127.0.0.1:{app.ports['webhook']}{path}"
    async with (
        aiohttp.ClientSession(skip_auto_headers=("User-Agent", "Content-Type")) as session,
        session.post(url, data=b"") as response,
    ):
        assert response.status == 200
    await eventually(
        lambda: requested_at(kube_server, f"{SOURCE}/namespaces/{namespace}/gitrepositories/fleet"),
        check=lambda value: value is not None,
    )


async def test_spec_events_is_ignored_for_types_flux_does_not_filter(
    app: App, kube_server: envtest.KubeTestServer, namespace: str
) -> None:
    """Flux matches spec.events only for github, gitlab, bitbucket and cdevents."""
    await make_secret(kube_server, namespace, "webhook-token", TOKEN)
    await make_gitrepo(kube_server, namespace, "fleet")
    await make_receiver(
        kube_server,
        namespace,
        "r",
        type_name="generic",
        events=["push"],
        resources=[{"kind": "GitRepository", "name": "fleet"}],
    )
    path = await ready_receiver(app, kube_server, namespace, "r")
    status, answer = await post(app, path)
    assert (status, answer["status"]) == (200, "accepted")
