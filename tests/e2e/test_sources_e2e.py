"""Every source end to end: recorded deliveries posted to the real App on the real API server.

Receiver path (`/hook/<digest>`): per Flux Receiver type, a Secret and a Receiver listing one
GitRepository or ImageRepository; the recorded fixture, signed with the Secret's token, must
reconcile it, while a wrong credential (401), an ignored event (2xx) and a malformed body (400)
must leave it alone. Discovery path (`/webhooks/<endpoint>`): the fixture, renamed per test
(the App's watches are cluster-wide), must reconcile exactly the objects it matches and none
of the near misses (another branch, tag or semver range of the same repository or image).
"""

from __future__ import annotations

import base64
import dataclasses
import functools
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from receiver.app import App
from receiver.events import ImagePush
from receiver.pipeline import endpoint_source
from receiver.routing.receivers import ReceiverEntry
from receiver.sources.base import RawDelivery
from tests import envtest
from tests.support import delivery_fixtures
from tests.support import signed_fixtures as fx
from tests.support.oidc_tokens import TestIssuer
from tests.support.running import eventually, kube, running_app

REQUESTED_AT = "reconcile.fluxcd.io/requestedAt"
COLLECTIONS = {
    "GitRepository": "/apis/source.toolkit.fluxcd.io/v1/namespaces/{ns}/gitrepositories",
    "OCIRepository": "/apis/source.toolkit.fluxcd.io/v1/namespaces/{ns}/ocirepositories",
    "HelmRepository": "/apis/source.toolkit.fluxcd.io/v1/namespaces/{ns}/helmrepositories",
    "ImageRepository": "/apis/image.toolkit.fluxcd.io/v1/namespaces/{ns}/imagerepositories",
}
RECEIVERS = "/apis/notification.toolkit.fluxcd.io/v1/namespaces/{ns}/receivers"
WRONG_TOKEN = b"not-the-token-of-this-receiver"
MALFORMED_BODY = b"{not json"
GOOGLE_ISSUER = "https://accounts.google.com"
# What a Receiver lists, by kind: one object each.
RECEIVER_TARGETS: Mapping[str, dict[str, Any]] = {
    "GitRepository": {"url": "https://github.com/org/fleet", "ref": {"branch": "main"}},
    "ImageRepository": {"image": "ghcr.io/org/app"},
}


# --- the cluster side -----------------------------------------------------------------------


async def create(
    server: envtest.KubeTestServer, ns: str, kind: str, name: str, spec: Mapping[str, Any]
) -> None:
    collection = COLLECTIONS[kind].format(ns=ns)
    api_version = "/".join(collection.split("/")[2:4])
    body = {
        "apiVersion": api_version,
        "kind": kind,
        "metadata": {"name": name},
        "spec": {"interval": "10m", **spec},
    }
    await kube(server, "POST", collection, body=body)


async def create_secret(
    server: envtest.KubeTestServer, ns: str, name: str, data: Mapping[str, bytes]
) -> None:
    encoded = {key: base64.b64encode(value).decode() for key, value in data.items()}
    await kube(
        server,
        "POST",
        f"/api/v1/namespaces/{ns}/secrets",
        body={"metadata": {"name": name}, "data": encoded},
    )


async def create_receiver(
    server: envtest.KubeTestServer, ns: str, name: str, spec: Mapping[str, Any]
) -> None:
    body = {
        "apiVersion": "notification.toolkit.fluxcd.io/v1",
        "kind": "Receiver",
        "metadata": {"name": name},
        "spec": dict(spec),
    }
    await kube(server, "POST", RECEIVERS.format(ns=ns), body=body)


async def patched(server: envtest.KubeTestServer, ns: str) -> set[str]:
    """`Kind/name` of every object of the namespace that carries a reconcile request."""
    found: set[str] = set()
    for kind, collection in COLLECTIONS.items():
        listing = await kube(server, "GET", collection.format(ns=ns))
        for item in listing["items"]:
            if REQUESTED_AT in (item["metadata"].get("annotations") or {}):
                found.add(f"{kind}/{item['metadata']['name']}")
    return found


async def post(
    app: App, path: str, body: bytes, headers: Mapping[str, str]
) -> tuple[int, dict[str, Any]]:
    url = f"http://127.0.0.1:{app.ports['webhook']}{path}"
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, data=body, headers=dict(headers)) as response,
    ):
        return response.status, await response.json(content_type=None)


# --- the sender side ------------------------------------------------------------------------


def signed_headers(
    fixtures: str, event: str, *, body: bytes, token: bytes | None = None
) -> dict[str, str]:
    """The recorded headers of `event`, made valid for `body` and `token` (default: the
    fixture's own token; another one makes every credential header wrong).

    Placeholders are filled by the fixture helpers. Signatures and tokens that a fixture
    recorded literally (ghcr, nexus, harbor, distribution) are recomputed the same way, so a
    renamed body still carries a consistent signature.
    """
    recorded_creds = fx.credentials(fixtures)
    creds = recorded_creds
    if token is not None:
        creds = dataclasses.replace(
            recorded_creds,
            token=token,
            secret_data={**recorded_creds.secret_data, "password": token},
        )
    recorded = delivery_fixtures.body(fixtures, event)
    swaps = {
        hmac.new(recorded_creds.token, recorded, digest).hexdigest(): hmac.new(
            creds.token, body, digest
        ).hexdigest()
        for digest in (hashlib.sha1, hashlib.sha256)
    }
    swaps[recorded_creds.token.decode()] = creds.token.decode()
    headers = fx.fill(fx.template(fixtures, event), body=body, creds=creds)
    for name in fx.credential_headers(fixtures, event):
        for old, new in swaps.items():
            headers[name] = headers[name].replace(old, new)
    return headers


@functools.cache
def google() -> TestIssuer:
    """Plays Google for the `gcr` type: the App reads this issuer's JWKS from a file."""
    return TestIssuer(kid="google-e2e-key")


def google_token(*, issuer: TestIssuer | None = None) -> str:
    """A fresh Pub/Sub push ID token with the audience and email the gcr fixture's Secret names."""
    expected = fx.credentials("gcr").secret_data
    now = int(time.time())
    claims = {
        "iss": GOOGLE_ISSUER,
        "aud": expected["audience"].decode(),
        "email": expected["email"].decode(),
        "email_verified": True,
        "sub": "104576537856782412345",
        "iat": now - 5,
        "exp": now + 600,
    }
    return (issuer or google()).sign(claims)


# --- Receiver path --------------------------------------------------------------------------


@dataclass(frozen=True)
class FluxCase:
    """One Flux Receiver type fed with the recorded deliveries of `tests/fixtures/<fixtures>`."""

    id: str
    type_name: str
    fixtures: str
    push: str
    ignored: str | None = None
    events: tuple[str, ...] = ()
    target: str = "GitRepository"
    authenticates: bool = True  # False: the secret webhook path is the only credential
    reads_body: bool = True  # False: the body is never parsed, so it cannot be malformed
    oidc: bool = False  # the credential is a fresh Google ID token in `Authorization: Bearer`


FLUX_CASES = (
    FluxCase("generic", "generic", "generic", "agentk", authenticates=False, reads_body=False),
    FluxCase("generic-hmac", "generic-hmac", "generic-hmac", "signal", reads_body=False),
    FluxCase("github", "github", "github", "push", ignored="ping"),
    FluxCase("github-gitea", "github", "gitea", "push", ignored="pull_request", events=("push",)),
    FluxCase(
        "gitlab",
        "gitlab",
        "gitlab",
        "push",
        ignored="merge_request",
        events=("Push Hook", "Tag Push Hook"),
    ),
    FluxCase("bitbucket-server", "bitbucket", "bitbucket", "server_push", ignored="server_ping"),
    FluxCase(
        "bitbucket-cloud",
        "bitbucket",
        "bitbucket",
        "cloud_push",
        ignored="cloud_pullrequest_created",
        events=("repo:push",),
    ),
    FluxCase(
        "harbor", "harbor", "harbor", "push_artifact", "delete_artifact", target="ImageRepository"
    ),
    FluxCase(
        "dockerhub", "dockerhub", "dockerhub", "push", target="ImageRepository", authenticates=False
    ),
    FluxCase(
        "quay",
        "quay",
        "quay",
        "repo_push",
        ignored="build_success",
        target="ImageRepository",
        authenticates=False,
    ),
    FluxCase(
        "nexus",
        "nexus",
        "nexus",
        "component_created",
        ignored="component_deleted",
        target="ImageRepository",
    ),
    FluxCase(
        "acr", "acr", "acr", "push", ignored="ping", target="ImageRepository", authenticates=False
    ),
    FluxCase(
        "cdevents",
        "cdevents",
        "cdevents",
        "artifact_published",
        ignored="change_merged",
        events=("dev.cdevents.artifact.published.0.2.0",),
        authenticates=False,
    ),
    FluxCase("gcr", "gcr", "gcr", "insert", ignored="delete", target="ImageRepository", oidc=True),
)


def _flux_params() -> list[Any]:
    params = []
    for case in FLUX_CASES:
        outcomes = ["accepted", "bad-credential"]
        outcomes += ["ignored"] if case.ignored else []
        outcomes += ["malformed"] if case.reads_body else []
        params += [pytest.param(case, o, id=f"{case.id}-{o}") for o in outcomes]
    return params


@pytest.fixture
async def app(kube_server: envtest.KubeTestServer, tmp_path: Path) -> AsyncIterator[App]:
    jwks = tmp_path / "google-jwks.json"
    jwks.write_text(json.dumps(google().jwks()))
    async with running_app(
        kubeconfig=kube_server.kubeconfig_path, gcr={"jwks": str(jwks)}
    ) as running:
        yield running


def flux_path(token: bytes, name: str, namespace: str) -> str:
    return "/hook/" + hashlib.sha256(token + f"{name}{namespace}".encode()).hexdigest()


async def receiver_seen(app: App, namespace: str, name: str) -> ReceiverEntry:
    """Wait until the App holds the Receiver together with its Secret's token."""

    async def probe() -> ReceiverEntry | None:
        return app.receivers.entry((namespace, name))

    entry = await eventually(probe, check=lambda e: e is not None and e.token is not None)
    assert entry is not None
    return entry


def delivery_for(case: FluxCase, event: str, *, body: bytes, token: bytes | None) -> dict[str, str]:
    headers = signed_headers(case.fixtures, event, body=body, token=token)
    if case.oidc:
        foreign = TestIssuer(kid=google().kid) if token is not None else None
        headers["authorization"] = "Bearer " + google_token(issuer=foreign)
    return headers


@pytest.mark.parametrize(("case", "outcome"), _flux_params())
async def test_receiver_path(
    app: App,
    kube_server: envtest.KubeTestServer,
    namespace: str,
    case: FluxCase,
    outcome: str,
) -> None:
    creds = fx.credentials(case.fixtures)
    await create_secret(kube_server, namespace, "webhook-token", creds.secret_data)
    await create(kube_server, namespace, case.target, "target", RECEIVER_TARGETS[case.target])
    spec: dict[str, Any] = {
        "type": case.type_name,
        "secretRef": {"name": "webhook-token"},
        "resources": [{"kind": case.target, "name": "target"}],
    }
    if case.events:
        spec["events"] = list(case.events)
    await create_receiver(kube_server, namespace, "r", spec)
    entry = await receiver_seen(app, namespace, "r")
    path = flux_path(creds.token, "r", namespace)
    assert entry.path == path

    event = case.ignored if outcome == "ignored" else case.push
    assert event is not None
    body = (
        MALFORMED_BODY if outcome == "malformed" else delivery_fixtures.body(case.fixtures, event)
    )
    wrong = outcome == "bad-credential"
    headers = delivery_for(case, event, body=body, token=WRONG_TOKEN if wrong else None)
    if wrong and not case.authenticates:
        # Nothing in the request is checked: the secret path is the credential.
        path = flux_path(WRONG_TOKEN, "r", namespace)
    status, answer = await post(app, path, body, headers)

    expected = {
        "accepted": (200, "accepted"),
        "bad-credential": (401, None) if case.authenticates else (404, None),
        "ignored": (200, "ignored"),
        "malformed": (400, None),
    }[outcome]
    assert (status, answer.get("status")) == expected, answer
    text = json.dumps(answer)
    assert creds.token.decode() not in text and WRONG_TOKEN.decode() not in text
    if outcome == "accepted":
        assert answer["targets"] == 1
    await app.queue.settle()
    reconciled = {f"{case.target}/target"} if outcome == "accepted" else set()
    assert await patched(kube_server, namespace) == reconciled


async def test_cdevents_against_the_spec_schemas_through_the_server(
    app: App, kube_server: envtest.KubeTestServer, namespace: str
) -> None:
    """A CDEvent of a type spec 0.4.1 lacks, or one breaking its type's schema, answers 400
    naming the type and the violation (never the body) and reconciles nothing; a valid one of
    another type than the fixtures' is accepted."""
    await create(
        kube_server, namespace, "ImageRepository", "target", RECEIVER_TARGETS["ImageRepository"]
    )
    await create_secret(kube_server, namespace, "webhook-token", {"token": b"cd-token"})
    await create_receiver(
        kube_server,
        namespace,
        "cd",
        {
            "type": "cdevents",
            "secretRef": {"name": "webhook-token"},
            "resources": [{"kind": "ImageRepository", "name": "target"}],
        },
    )
    entry = await receiver_seen(app, namespace, "cd")
    path = flux_path(b"cd-token", "cd", namespace)
    assert entry.path == path

    def cdevent(event_type: str, content: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
        body = {
            "context": {
                "version": "0.4.1",
                "id": "cd-1",
                "source": "/ci",
                "type": event_type,
                "timestamp": "2025-05-01T10:00:00Z",
            },
            "subject": {"id": "svc", "source": "/cd", "type": "service", "content": content},
        }
        headers = {"content-type": "application/json", "ce-type": event_type, "ce-id": "cd-1"}
        return json.dumps(body).encode(), headers

    unknown = await post(app, path, *cdevent("dev.cdevents.service.teleported.0.1.0", {}))
    assert unknown[0] == 400
    assert "unknown CDEvent type 'dev.cdevents.service.teleported.0.1.0'" in json.dumps(unknown)
    broken = await post(
        app,
        path,
        *cdevent(
            "dev.cdevents.service.deployed.0.2.0",
            {"environment": {"id": 7}, "artifactId": "pkg:oci/x"},
        ),
    )
    assert broken[0] == 400
    assert "body.subject.content.environment.id must be string" in json.dumps(broken)
    await app.queue.settle()
    assert await patched(kube_server, namespace) == set()

    valid = await post(
        app,
        path,
        *cdevent(
            "dev.cdevents.service.deployed.0.2.0",
            {"environment": {"id": "prod"}, "artifactId": "pkg:oci/podinfo@sha256%3A0b1a"},
        ),
    )
    assert (valid[0], valid[1].get("status"), valid[1].get("targets")) == (200, "accepted", 1)
    await app.queue.settle()
    assert await patched(kube_server, namespace) == {"ImageRepository/target"}


# --- discovery path -------------------------------------------------------------------------


@dataclass(frozen=True)
class Obj:
    """A Flux object to create; `{ns}` in its spec becomes the test's namespace."""

    kind: str
    name: str
    spec: Mapping[str, Any]
    hit: bool

    def spec_in(self, ns: str) -> dict[str, Any]:
        filled: dict[str, Any] = json.loads(json.dumps(self.spec).replace("{ns}", ns))
        return filled


@dataclass(frozen=True)
class DiscoveryCase:
    """One `/webhooks/<endpoint>` fed a recorded delivery whose repository or image is renamed
    (`rename`: recorded text -> text with `{ns}`) so that only this test's objects match."""

    id: str
    endpoint: str
    fixtures: str
    event: str
    rename: tuple[str, str]
    objects: tuple[Obj, ...]
    authenticates: bool = True


def _git(name: str, url: str, ref: Mapping[str, str], *, hit: bool) -> Obj:
    return Obj("GitRepository", name, {"url": url, "ref": dict(ref)}, hit)


def _oci(name: str, url: str, ref: Mapping[str, str] | None = None, *, hit: bool) -> Obj:
    spec: dict[str, Any] = {"url": url}
    if ref is not None:
        spec["ref"] = dict(ref)
    return Obj("OCIRepository", name, spec, hit)


def _image(name: str, image: str) -> Obj:
    return Obj("ImageRepository", name, {"image": image}, True)


def _helm(name: str, url: str) -> Obj:
    return Obj("HelmRepository", name, {"type": "oci", "url": url}, True)


DISCOVERY_CASES = (
    DiscoveryCase(
        "gitea-push",
        "gitea",
        "gitea",
        "push",
        ("platform/fleet-infra", "platform/{ns}"),
        (
            _git("main", "https://git.example.com/platform/{ns}", {"branch": "main"}, hit=True),
            _git(
                "main-ssh",
                "ssh://git@git.example.com:2222/platform/{ns}.git",
                {"branch": "main"},
                hit=True,
            ),
            _git("dev", "https://git.example.com/platform/{ns}.git", {"branch": "dev"}, hit=False),
        ),
    ),
    DiscoveryCase(
        "gitea-forgejo-tag",
        "gitea",
        "gitea",
        "forgejo_tag_push",
        ("platform/fleet-infra", "platform/{ns}"),
        (
            _git("tag", "https://codeberg.org/platform/{ns}", {"tag": "v2.0.0"}, hit=True),
            _git("semver", "ssh://git@codeberg.org/platform/{ns}.git", {"semver": "2.x"}, hit=True),
            _git("main", "https://codeberg.org/platform/{ns}", {"branch": "main"}, hit=False),
        ),
    ),
    DiscoveryCase(
        # One delivery, three ref changes: main updated, tag v1.4.0 added, feature/old deleted.
        "bitbucket-server-refs",
        "bitbucket",
        "bitbucket",
        "server_push",
        ("fleet-infra", "{ns}"),
        (
            _git(
                "main",
                "https://bitbucket.example.com/scm/plat/{ns}.git",
                {"branch": "main"},
                hit=True,
            ),
            _git(
                "tag",
                "ssh://git@bitbucket.example.com:7999/plat/{ns}.git",
                {"tag": "v1.4.0"},
                hit=True,
            ),
            _git(
                "deleted",
                "https://bitbucket.example.com/scm/plat/{ns}.git",
                {"branch": "feature/old"},
                hit=False,
            ),
            _git(
                "release",
                "https://bitbucket.example.com/scm/plat/{ns}.git",
                {"branch": "release"},
                hit=False,
            ),
        ),
    ),
    DiscoveryCase(
        "bitbucket-cloud",
        "bitbucket",
        "bitbucket",
        "cloud_push",
        ("acme/fleet-infra", "acme/{ns}"),
        (
            _git("main", "https://bitbucket.org/acme/{ns}.git", {"branch": "main"}, hit=True),
            _git("dev", "ssh://git@bitbucket.org/acme/{ns}.git", {"branch": "dev"}, hit=False),
        ),
    ),
    DiscoveryCase(
        "azure-devops-refs",
        "azure-devops",
        "azure-devops",
        "git_push",
        ("fleet-infra", "{ns}"),
        (
            _git(
                "main",
                "https://dev.azure.com/fabrikam/Platform/_git/{ns}",
                {"branch": "main"},
                hit=True,
            ),
            _git(
                "tag",
                "ssh://git@ssh.dev.azure.com/v3/fabrikam/Platform/{ns}",
                {"tag": "v1.4.0"},
                hit=True,
            ),
            _git(
                "dev",
                "https://dev.azure.com/fabrikam/Platform/_git/{ns}",
                {"branch": "dev"},
                hit=False,
            ),
        ),
    ),
    DiscoveryCase(
        "ghcr",
        "ghcr",
        "ghcr",
        "package_published",
        ("acme-corp/podinfo", "acme-corp/{ns}"),
        (
            _image("image", "ghcr.io/acme-corp/{ns}"),
            _oci("semver", "oci://GHCR.io/Acme-Corp/{ns}", {"semver": ">=6.0.0 <7.0.0"}, hit=True),
            _oci("old-tag", "oci://ghcr.io/acme-corp/{ns}", {"tag": "6.5.3"}, hit=False),
        ),
    ),
    DiscoveryCase(
        "distribution",
        "distribution",
        "distribution",
        "push",
        ("platform/podinfo", "{ns}/podinfo"),
        (
            _oci(
                "tag",
                "oci://registry.internal.example:5000/{ns}/podinfo",
                {"tag": "1.4.2"},
                hit=True,
            ),
            _helm("charts", "oci://registry.internal.example:5000/{ns}"),
            _oci(
                "next-major",
                "oci://registry.internal.example:5000/{ns}/podinfo",
                {"semver": ">=2.0.0"},
                hit=False,
            ),
        ),
    ),
    DiscoveryCase(
        "harbor",
        "harbor",
        "harbor",
        "push_artifact",
        ("platform/podinfo", "{ns}/podinfo"),
        (
            _image("image", "harbor.example.com:8443/{ns}/podinfo"),
            _oci(
                "semver",
                "oci://harbor.example.com:8443/{ns}/podinfo",
                {"semver": ">=1.0.0 <2.0.0"},
                hit=True,
            ),
            _oci(
                "old-tag", "oci://harbor.example.com:8443/{ns}/podinfo", {"tag": "1.4.1"}, hit=False
            ),
        ),
    ),
    DiscoveryCase(
        "dockerhub",
        "dockerhub",
        "dockerhub",
        "push",
        ("acme-corp/podinfo", "acme-corp/{ns}"),
        (
            _image("short-name", "acme-corp/{ns}"),
            _oci("alias-host", "oci://index.docker.io/acme-corp/{ns}", {"tag": "6.5.4"}, hit=True),
            _oci("latest", "oci://registry-1.docker.io/acme-corp/{ns}", hit=False),
        ),
        authenticates=False,
    ),
    DiscoveryCase(
        # Several events in one delivery: the push updated tags v6.5.4 and latest.
        "quay-two-tags",
        "quay",
        "quay",
        "repo_push",
        ("acme/podinfo", "acme/{ns}"),
        (
            _oci("v6", "oci://quay.io/acme/{ns}", {"tag": "v6.5.4"}, hit=True),
            _oci("latest", "oci://quay.io/acme/{ns}", hit=True),
            _oci("old-tag", "oci://quay.io/acme/{ns}", {"tag": "v6.5.3"}, hit=False),
        ),
        authenticates=False,
    ),
    DiscoveryCase(
        "acr",
        "acr",
        "acr",
        "push",
        ("apps/podinfo", "{ns}/podinfo"),
        (
            _helm("charts", "oci://acmeregistry.azurecr.io/{ns}"),
            _image("image", "acmeregistry.azurecr.io/{ns}/podinfo"),
            _oci(
                "pinned", "oci://acmeregistry.azurecr.io/{ns}/podinfo", {"tag": "7.0.0"}, hit=False
            ),
        ),
        authenticates=False,
    ),
)


def _renamed_body(case: DiscoveryCase, ns: str) -> bytes:
    old, new = case.rename
    recorded = delivery_fixtures.body(case.fixtures, case.event)
    assert old.encode() in recorded, f"{case.id}: {old!r} is not in the fixture"
    return recorded.replace(old.encode(), new.replace("{ns}", ns).encode())


async def watches_caught_up(
    app: App, delivery: RawDelivery, *, endpoint: str, ns: str, names: set[str]
) -> None:
    """Wait until routing the delivery's events sees every created object (as a hit or a skip)."""
    source = endpoint_source(endpoint)
    assert source is not None
    events = source.parse(delivery)

    async def seen() -> set[str]:
        found: set[str] = set()
        for event in events:
            routed = app.discovery.route(event)
            refs = [*routed.targets, *(skip.ref for skip in routed.skipped)]
            found.update(f"{ref.kind}/{ref.name}" for ref in refs if ref.namespace == ns)
        return found

    await eventually(seen, check=lambda found: found >= names)


@pytest.mark.parametrize("case", DISCOVERY_CASES, ids=[case.id for case in DISCOVERY_CASES])
async def test_discovery_path(
    kube_server: envtest.KubeTestServer, namespace: str, case: DiscoveryCase
) -> None:
    creds = fx.credentials(case.fixtures)
    await create_secret(kube_server, namespace, "endpoint-secret", creds.secret_data)
    objects = case.objects
    for obj in objects:
        await create(kube_server, namespace, obj.kind, obj.name, obj.spec_in(namespace))
    body = _renamed_body(case, namespace)
    headers = signed_headers(case.fixtures, case.event, body=body)
    endpoint = {"secret_ref": {"namespace": namespace, "name": "endpoint-secret"}}
    async with running_app(
        kubeconfig=kube_server.kubeconfig_path, discovery={"endpoints": {case.endpoint: endpoint}}
    ) as app:
        await watches_caught_up(
            app,
            RawDelivery(headers=headers, body=body),
            endpoint=case.endpoint,
            ns=namespace,
            names={f"{obj.kind}/{obj.name}" for obj in objects},
        )
        path = f"/webhooks/{case.endpoint}"
        if case.authenticates:
            forged = signed_headers(case.fixtures, case.event, body=body, token=WRONG_TOKEN)
            status, answer = await post(app, path, body, forged)
            assert status == 401, answer
        else:
            # Nothing in the payload is signed: the endpoint's token travels in the path.
            for unauthorised in (path, f"{path}/{WRONG_TOKEN.decode()}"):
                status, answer = await post(app, unauthorised, body, headers)
                assert status == 401 and "signs nothing" in answer["error"], answer
            path = f"{path}/{creds.token.decode()}"
        status, answer = await post(app, path, body, headers)
        hits = {f"{obj.kind}/{obj.name}" for obj in objects if obj.hit}
        assert (status, answer["status"], answer["targets"]) == (200, "accepted", len(hits)), answer
        await app.queue.settle()
        assert await patched(kube_server, namespace) == hits


def test_multi_event_fixtures_really_carry_several_events() -> None:
    """The discovery cases above that claim several events per delivery do carry them."""
    quay = endpoint_source("quay")
    assert quay is not None
    events = quay.parse(fx.load("quay", "repo_push"))
    assert [e.tag for e in events if isinstance(e, ImagePush)] == ["v6.5.4", "latest"]
    bitbucket = endpoint_source("bitbucket")
    assert bitbucket is not None
    assert len(bitbucket.parse(fx.load("bitbucket", "server_push"))) == 3
