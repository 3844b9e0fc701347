"""generic-oidc as Flux v1.9 defines it, against a loopback OIDC issuer and the real API server.

`spec.oidcProviders`: the provider whose `issuerURL` is the token's `iss` verifies it (keys
from the issuer's discovery document and JWKS, fetched once and cached), its `variables` and
`validations` (CEL) decide, and `claims` is available to `resourceFilter`. The Receiver has
no Secret: its path is sha256("" + name + namespace).
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from receiver.app import App
from tests import envtest
from tests.support.oidc_tokens import TestIssuer
from tests.support.running import eventually, kube, running_app

RECEIVERS = "/apis/notification.toolkit.fluxcd.io/v1/namespaces/{ns}/receivers"
SOURCE = "/apis/source.toolkit.fluxcd.io/v1/namespaces/{ns}/gitrepositories"
REQUESTED_AT = "reconcile.fluxcd.io/requestedAt"


class LoopbackIssuer:
    """/.well-known/openid-configuration and its jwks_uri on 127.0.0.1, counting requests."""

    def __init__(self) -> None:
        self.signer = TestIssuer()
        self.hits: dict[str, int] = {"discovery": 0, "jwks": 0}
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/.well-known/openid-configuration", self._discovery)
        app.router.add_get("/jwks", self._jwks)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _discovery(self, _request: web.Request) -> web.Response:
        self.hits["discovery"] += 1
        return web.json_response({"issuer": self.url, "jwks_uri": f"{self.url}/jwks"})

    async def _jwks(self, _request: web.Request) -> web.Response:
        self.hits["jwks"] += 1
        return web.json_response(self.signer.jwks())

    def token(self, **claims: Any) -> str:
        now = int(time.time())
        base = {
            "iss": self.url,
            "aud": "notification-controller",
            "sub": "repo:my-org/repo-a:environment:production",
            "repository": "my-org/repo-a",
            "repository_owner": "my-org",
            "ref": "refs/heads/main",
            "environment": "production",
            "iat": now,
            "exp": now + 300,
        }
        return self.signer.sign(base | claims)


@pytest.fixture
async def issuer() -> AsyncIterator[LoopbackIssuer]:
    server = LoopbackIssuer()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
async def app(kube_server: envtest.KubeTestServer, namespace: str) -> AsyncIterator[App]:
    for name, repository in (("repo-a", "my-org/repo-a"), ("repo-b", "my-org/repo-b")):
        await kube(
            kube_server,
            "POST",
            SOURCE.format(ns=namespace),
            body={
                "apiVersion": "source.toolkit.fluxcd.io/v1",
                "kind": "GitRepository",
                "metadata": {
                    "name": name,
                    "annotations": {"source-repository": repository},
                },
                "spec": {"url": f"https://github.com/{repository}", "interval": "10m"},
            },
        )
    async with running_app(
        kubeconfig=kube_server.kubeconfig_path, trigger={"min_interval_s": 0}
    ) as running:
        yield running


def flux_path(name: str, namespace: str) -> str:
    return "/hook/" + hashlib.sha256(f"{name}{namespace}".encode()).hexdigest()


def documented_provider(issuer_url: str) -> dict[str, Any]:
    """The `variables` example of Flux's generic-oidc documentation, on the loopback issuer."""
    return {
        "issuerURL": issuer_url,
        "audience": "notification-controller",
        "variables": [
            {"name": "owner", "expression": "claims.repository_owner"},
            {
                "name": "allowedRepos",
                "expression": "[vars.owner + '/repo-a', vars.owner + '/repo-b']",
            },
        ],
        "validations": [
            {"expression": "vars.owner == 'my-org'", "message": "wrong org"},
            {
                "expression": "claims.repository in vars.allowedRepos",
                "message": "repo not in allowlist",
            },
            {
                "expression": "claims.ref == 'refs/heads/main' && claims.environment == 'production'",
                "message": "must be main branch + production environment",
            },
        ],
    }


async def make_receiver(
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
            "spec": {"type": "generic-oidc", **spec},
        },
    )
    found: dict[str, Any] = await eventually(
        lambda: kube(server, "GET", f"{RECEIVERS.format(ns=namespace)}/{name}"),
        check=lambda r: bool(r.get("status", {}).get("conditions")),
    )
    return found


async def post(app: App, path: str, token: str | None) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    url = f"http://127.0.0.1:{app.ports['webhook']}{path}"
    async with aiohttp.ClientSession() as session, session.post(url, headers=headers) as response:
        return response.status, await response.json(content_type=None)


async def reconciled(server: envtest.KubeTestServer, ns: str) -> set[str]:
    listing = await kube(server, "GET", SOURCE.format(ns=ns))
    return {
        item["metadata"]["name"]
        for item in listing["items"]
        if (item["metadata"].get("annotations") or {}).get(REQUESTED_AT)
    }


async def test_documented_validations_decide_and_keys_are_cached(
    app: App, kube_server: envtest.KubeTestServer, namespace: str, issuer: LoopbackIssuer
) -> None:
    found = await make_receiver(
        kube_server,
        namespace,
        "ci",
        oidcProviders=[documented_provider(issuer.url)],
        resources=[{"kind": "GitRepository", "name": "repo-a"}],
    )
    (ready,) = [c for c in found["status"]["conditions"] if c["type"] == "Ready"]
    assert ready["status"] == "True", ready
    path = flux_path("ci", namespace)
    assert found["status"]["webhookPath"] == path
    refusals = {
        "wrong org": issuer.token(repository_owner="other", repository="other/repo-a"),
        "repo not in allowlist": issuer.token(repository="my-org/repo-z"),
        "must be main branch": issuer.token(ref="refs/heads/dev"),
        "audience": issuer.token(aud="someone-else"),
        "expired": issuer.token(iat=int(time.time()) - 900, exp=int(time.time()) - 600),
        "no oidcProvider configured for issuer": issuer.token(iss="https://elsewhere.example"),
        "signature": TestIssuer(kid=issuer.signer.kid).sign({"iss": issuer.url}),
    }
    for needle, token in refusals.items():
        status, answer = await post(app, path, token)
        assert status == 401 and needle in answer["error"], (needle, answer)
    assert (await post(app, path, None))[0] == 401
    for _ in range(3):
        assert await post(app, path, issuer.token()) == (
            200,
            {"status": "accepted", "targets": 1},
        )
    await app.queue.settle()
    assert await reconciled(kube_server, namespace) == {"repo-a"}
    assert issuer.hits == {"discovery": 1, "jwks": 1}


async def test_claims_reach_the_resource_filter(
    app: App, kube_server: envtest.KubeTestServer, namespace: str, issuer: LoopbackIssuer
) -> None:
    """The documented filter: only the GitRepository of the calling repository."""
    await make_receiver(
        kube_server,
        namespace,
        "by-repo",
        oidcProviders=[documented_provider(issuer.url)],
        resourceFilter="claims.repository == res.metadata.annotations['source-repository']",
        resources=[{"kind": "GitRepository", "name": "*", "matchLabels": {}}],
    )
    status, answer = await post(
        app, flux_path("by-repo", namespace), issuer.token(repository="my-org/repo-b")
    )
    assert (status, answer) == (200, {"status": "accepted", "targets": 1})
    await app.queue.settle()
    assert await reconciled(kube_server, namespace) == {"repo-b"}


@pytest.mark.parametrize(
    ("spec", "needle"),
    [
        ({"validations": []}, "should have at least 1 items"),
        ({"issuerURL": "ftp://issuer"}, "should match '^https?://'"),
    ],
    ids=["no-validations", "issuer-scheme"],
)
async def test_providers_flux_crd_refuses_never_reach_the_service(
    kube_server: envtest.KubeTestServer, namespace: str, spec: dict[str, Any], needle: str
) -> None:
    """Flux's real Receiver CRD refuses these outright (the service's own ValidationFailed
    check stays for objects stored under an older CRD)."""
    provider = {
        "issuerURL": "https://issuer.example",
        "validations": [{"expression": "true", "message": "m"}],
    }
    status, body = await asyncio.to_thread(
        kube_server.request,
        "POST",
        RECEIVERS.format(ns=namespace),
        body={
            "apiVersion": "notification.toolkit.fluxcd.io/v1",
            "kind": "Receiver",
            "metadata": {"name": "bad"},
            "spec": {
                "type": "generic-oidc",
                "oidcProviders": [provider | spec],
                "resources": [{"kind": "GitRepository", "name": "repo-a"}],
            },
        },
    )
    assert status == 422, body
    assert needle in body["message"]


@pytest.mark.parametrize(
    ("spec", "reason", "needle"),
    [
        (
            {"validations": [{"expression": "claims.sub ==", "message": "m"}]},
            "InvalidCELExpression",
            "invalid expression for validation 'm'",
        ),
        (
            {"validations": [{"expression": "res.metadata.name == 'x'", "message": "m"}]},
            "InvalidCELExpression",
            "undeclared reference to 'res'",
        ),
    ],
    ids=["syntax", "undeclared"],
)
async def test_invalid_providers_are_not_ready_like_flux(
    app: App,
    kube_server: envtest.KubeTestServer,
    namespace: str,
    spec: dict[str, Any],
    reason: str,
    needle: str,
) -> None:
    provider = {
        "issuerURL": "https://issuer.example",
        "validations": [{"expression": "true", "message": "m"}],
    }
    found = await make_receiver(
        kube_server,
        namespace,
        "bad",
        oidcProviders=[provider | spec],
        resources=[{"kind": "GitRepository", "name": "repo-a"}],
    )
    (ready,) = [c for c in found["status"]["conditions"] if c["type"] == "Ready"]
    assert (ready["status"], ready["reason"]) == ("False", reason)
    assert needle in ready["message"]
    assert (await post(app, flux_path("bad", namespace), "x.y.z"))[0] == 503
