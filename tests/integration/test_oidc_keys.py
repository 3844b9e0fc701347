"""JwksCache against a real loopback HTTP server that serves (and rotates) a JWKS.

Time is a fake clock moved by the tests; the server counts every request it answers.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from receiver import oidc_keys
from receiver.errors import AuthenticationFailed, JwksUnavailable, UnknownSigningKey
from receiver.events import ImagePush
from receiver.http import server
from receiver.sources import gcr
from receiver.sources.base import Credentials, OidcSettings
from tests.support import delivery_fixtures
from tests.support.oidc_tokens import TestIssuer

NOW = 1_717_171_717.0
AUDIENCE = "https://receiver.example.com/hook/abc"
EMAIL = "push@acme-prod.iam.gserviceaccount.com"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class JwksServer:
    """Serves `self.jwks` at /certs and an OIDC discovery document; records every request."""

    def __init__(self) -> None:
        self.jwks: dict[str, Any] = {"keys": []}
        self.status = 200
        self.cache_control: str | None = "public, max-age=19800, must-revalidate"
        self.requests: list[str] = []
        self.server: TestServer | None = None

    async def certs(self, request: web.Request) -> web.Response:
        assert request.method == "GET"
        self.requests.append(request.path)
        headers = {"Cache-Control": self.cache_control} if self.cache_control else {}
        if self.status != 200:
            return web.Response(status=self.status, text="unavailable")
        return web.json_response(self.jwks, headers=headers)

    async def discovery(self, request: web.Request) -> web.Response:
        self.requests.append(request.path)
        assert self.server is not None
        base = str(self.server.make_url("")).rstrip("/")
        return web.json_response({"issuer": base, "jwks_uri": f"{base}/certs"})

    @property
    def url(self) -> str:
        assert self.server is not None
        return str(self.server.make_url("/certs"))


@pytest.fixture
async def jwks_server() -> AsyncIterator[JwksServer]:
    state = JwksServer()
    app = web.Application()
    app.router.add_get("/certs", state.certs)
    app.router.add_get("/.well-known/openid-configuration", state.discovery)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    state.server = server
    try:
        yield state
    finally:
        await server.close()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


@pytest.fixture(scope="module")
def old_key() -> TestIssuer:
    return TestIssuer(kid="old-key")


@pytest.fixture(scope="module")
def new_key() -> TestIssuer:
    return TestIssuer(kid="new-key")


def claims() -> dict[str, Any]:
    return {
        "iss": "https://accounts.google.com",
        "aud": AUDIENCE,
        "email": EMAIL,
        "email_verified": True,
        "iat": NOW - 5,
        "exp": NOW + 600,
    }


def credentials() -> Credentials:
    return Credentials(
        token=b"",
        secret_data={"email": EMAIL.encode(), "audience": AUDIENCE.encode()},
        now_s=NOW,
        oidc=OidcSettings(keys={}),
    )


def cache_for(
    server: JwksServer, session: aiohttp.ClientSession, clock: FakeClock, **kw: Any
) -> oidc_keys.JwksCache:
    return oidc_keys.JwksCache(location=server.url, session=session, clock=clock, **kw)


async def test_keys_are_fetched_once_and_cached_for_the_ttl(
    jwks_server: JwksServer, session: aiohttp.ClientSession, old_key: TestIssuer
) -> None:
    jwks_server.jwks = old_key.jwks()
    clock = FakeClock()
    cache = cache_for(jwks_server, session, clock, ttl_s=3600)
    assert set(await cache.keys()) == {"old-key"}
    clock.now += 3599
    assert set(await cache.keys()) == {"old-key"}
    assert jwks_server.requests == ["/certs"]
    clock.now += 1
    await cache.keys()
    assert jwks_server.requests == ["/certs", "/certs"]


async def test_server_max_age_shortens_the_ttl(
    jwks_server: JwksServer, session: aiohttp.ClientSession, old_key: TestIssuer
) -> None:
    jwks_server.jwks = old_key.jwks()
    jwks_server.cache_control = "public, max-age=120"
    clock = FakeClock()
    cache = cache_for(jwks_server, session, clock, ttl_s=3600)
    await cache.keys()
    clock.now += 121
    await cache.keys()
    assert len(jwks_server.requests) == 2


async def test_rotation_unknown_kid_refreshes_once_and_verifies(
    jwks_server: JwksServer,
    session: aiohttp.ClientSession,
    old_key: TestIssuer,
    new_key: TestIssuer,
) -> None:
    jwks_server.jwks = old_key.jwks()
    clock = FakeClock()
    cache = cache_for(jwks_server, session, clock)
    await cache.keys()
    jwks_server.jwks = {"keys": [old_key.jwk(), new_key.jwk()]}  # Google rotates
    clock.now += 60  # past the refresh interval since the first load
    delivery = delivery_fixtures.load(
        "gcr", "insert", authorization=f"Bearer {new_key.sign(claims())}"
    )
    await oidc_keys.verify_with_refresh(
        source=gcr.SOURCE, delivery=delivery, credentials=credentials(), cache=cache
    )
    (event,) = gcr.parse(delivery)
    assert isinstance(event, ImagePush)
    assert jwks_server.requests == ["/certs", "/certs"]


async def test_forged_kids_cannot_make_it_fetch_more_than_once_per_interval(
    jwks_server: JwksServer, session: aiohttp.ClientSession, old_key: TestIssuer
) -> None:
    jwks_server.jwks = old_key.jwks()
    clock = FakeClock()
    cache = cache_for(jwks_server, session, clock, min_refresh_interval_s=60)
    await cache.keys()
    clock.now += 60
    for attempt in range(5):
        forged = TestIssuer(kid=f"forged-{attempt}", key=old_key.key)
        delivery = delivery_fixtures.load(
            "gcr", "insert", authorization=f"Bearer {forged.sign(claims())}"
        )
        with pytest.raises(UnknownSigningKey):
            await oidc_keys.verify_with_refresh(
                source=gcr.SOURCE, delivery=delivery, credentials=credentials(), cache=cache
            )
        clock.now += 10
    assert len(jwks_server.requests) == 2  # the first load and one refresh
    clock.now += 60
    assert await cache.refresh_for("still-unknown") is False
    assert len(jwks_server.requests) == 3


async def test_failed_fetch_keeps_the_last_keys(
    jwks_server: JwksServer, session: aiohttp.ClientSession, old_key: TestIssuer
) -> None:
    jwks_server.jwks = old_key.jwks()
    clock = FakeClock()
    cache = cache_for(jwks_server, session, clock, ttl_s=100, min_refresh_interval_s=30)
    await cache.keys()
    jwks_server.status = 503
    clock.now += 100
    assert set(await cache.keys()) == {"old-key"}
    clock.now += 10
    await cache.keys()  # stale keys kept; no retry before the refresh interval
    assert len(jwks_server.requests) == 2
    jwks_server.status = 200
    clock.now += 20
    await cache.keys()
    assert len(jwks_server.requests) == 3


async def test_no_keys_at_all_is_a_503(
    jwks_server: JwksServer, session: aiohttp.ClientSession
) -> None:
    jwks_server.status = 500
    cache = cache_for(jwks_server, session, FakeClock())
    with pytest.raises(JwksUnavailable) as caught:
        await cache.keys()
    assert server.answer_for(caught.value) == (503, "unavailable")
    jwks_server.status = 200
    jwks_server.jwks = {"not": "a jwks"}
    with pytest.raises(JwksUnavailable):
        await cache_for(jwks_server, session, FakeClock()).keys()


async def test_wrong_signature_is_not_retried(
    jwks_server: JwksServer, session: aiohttp.ClientSession, old_key: TestIssuer
) -> None:
    jwks_server.jwks = old_key.jwks()
    cache = cache_for(jwks_server, session, FakeClock())
    forged = TestIssuer(kid="old-key")  # same kid, different key
    delivery = delivery_fixtures.load(
        "gcr", "insert", authorization=f"Bearer {forged.sign(claims())}"
    )
    with pytest.raises(AuthenticationFailed, match="signature"):
        await oidc_keys.verify_with_refresh(
            source=gcr.SOURCE, delivery=delivery, credentials=credentials(), cache=cache
        )
    assert jwks_server.requests == ["/certs"]


async def test_file_location(tmp_path: Path, old_key: TestIssuer, new_key: TestIssuer) -> None:
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps(old_key.jwks()))
    clock = FakeClock()
    cache = oidc_keys.JwksCache(location=f"file://{path}", clock=clock)
    assert set(await cache.keys()) == {"old-key"}
    path.write_text(json.dumps(new_key.jwks()))
    clock.now += 61
    assert await cache.refresh_for("new-key") is True
    assert set(await cache.keys()) == {"new-key"}


async def test_discovery_finds_the_jwks_uri(
    jwks_server: JwksServer, session: aiohttp.ClientSession
) -> None:
    issuer = jwks_server.url.removesuffix("/certs")
    assert await oidc_keys.discover_jwks_uri(issuer, session=session) == jwks_server.url
    with pytest.raises(JwksUnavailable, match="does not name issuer"):
        await oidc_keys.discover_jwks_uri(issuer + "/", session=session)
    with pytest.raises(JwksUnavailable, match="answered 404"):
        await oidc_keys.discover_jwks_uri(issuer + "/other", session=session)


def test_pure_helpers() -> None:
    assert oidc_keys.max_age_s("public, max-age=19800, must-revalidate") == 19800
    assert oidc_keys.max_age_s("no-store") is None
    assert oidc_keys.parse_jwks(b'{"keys": [{"kid": "a", "kty": "RSA"}, {"kty": "RSA"}]}') == {
        "a": {"kid": "a", "kty": "RSA"}
    }
    with pytest.raises(ValueError):
        oidc_keys.parse_jwks(b"[]")
    with pytest.raises(ValueError, match="session"):
        oidc_keys.JwksCache(location="https://example.com/certs")
