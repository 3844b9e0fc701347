"""gcr: Pub/Sub push with a Google-signed ID token; every way the token check can fail."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from receiver.errors import AuthenticationFailed, MalformedPayload, UnknownSigningKey
from receiver.events import Ignored, ImagePush
from receiver.http import server
from receiver.sources import gcr
from receiver.sources.base import Credentials, OidcSettings, RawDelivery
from tests.support import delivery_fixtures
from tests.support.oidc_tokens import TestIssuer

NOW = 1_717_171_717.0
AUDIENCE = "https://hooks.example.com/hook/0123abcd"
EMAIL = "pubsub-push@acme-prod.iam.gserviceaccount.com"


@pytest.fixture(scope="module")
def google() -> TestIssuer:
    return TestIssuer(kid="f5f4bf46e52b31d9b6249f7309ad0338400680cd")


def claims(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "iss": "https://accounts.google.com",
        "aud": AUDIENCE,
        "azp": "104576537856782412345",
        "sub": "104576537856782412345",
        "email": EMAIL,
        "email_verified": True,
        "iat": NOW - 10,
        "exp": NOW + 3590,
    }
    base.update(overrides)
    return {key: value for key, value in base.items() if value is not None}


def credentials(issuer: TestIssuer, **secret: bytes) -> Credentials:
    data = {"token": b"unused", "email": EMAIL.encode(), "audience": AUDIENCE.encode(), **secret}
    return Credentials(
        token=b"unused",
        secret_data=data,
        now_s=NOW,
        oidc=OidcSettings(keys=issuer.keys()),
    )


def delivery(token: str, event: str = "insert") -> RawDelivery:
    return delivery_fixtures.load("gcr", event, authorization=f"Bearer {token}")


def test_valid_insert_is_an_image_push(google: TestIssuer) -> None:
    push = delivery(google.sign(claims()))
    gcr.verify(push, credentials(google))
    assert gcr.parse(push) == (
        ImagePush(
            source="gcr",
            event="INSERT",
            repository="us-docker.pkg.dev/acme-prod/apps/podinfo",
            tag="6.5.4",
            digest="sha256:6ec128e26cd5b3ae1d3e1b2e3d0d6f8c2b9a1f0e4d3c2b1a09f8e7d6c5b4a392",
            delivery_id="11386543210987654",
        ),
    )


def test_issuer_without_scheme_and_audience_list_are_accepted(google: TestIssuer) -> None:
    token = google.sign(claims(iss="accounts.google.com", aud=["other", AUDIENCE]))
    gcr.verify(delivery(token), credentials(google))


def test_small_clock_skew_is_tolerated(google: TestIssuer) -> None:
    late = google.sign(claims(exp=NOW - 30, iat=NOW - 3630))
    early = google.sign(claims(iat=NOW + 30, nbf=NOW + 30, exp=NOW + 3630))
    gcr.verify(delivery(late), credentials(google))
    gcr.verify(delivery(early), credentials(google))


def test_secret_without_email_and_audience_checks_neither_like_flux(google: TestIssuer) -> None:
    token = google.sign(claims(aud="anything", email="someone@else.iam.gserviceaccount.com"))
    creds = dataclasses.replace(credentials(google), secret_data={"token": b"unused"})
    gcr.verify(delivery(token), creds)


def test_configured_emails_apply_when_the_secret_has_none(google: TestIssuer) -> None:
    token = google.sign(claims(email="someone@else.iam.gserviceaccount.com"))
    creds = Credentials(
        token=b"",
        now_s=NOW,
        oidc=OidcSettings(keys=google.keys(), audience=AUDIENCE, emails=(EMAIL,)),
    )
    with pytest.raises(AuthenticationFailed, match="service account"):
        gcr.verify(delivery(token), creds)


def test_delete_is_ignored(google: TestIssuer) -> None:
    (event,) = gcr.parse(delivery(google.sign(claims()), "delete"))
    assert isinstance(event, Ignored)
    assert event.event == "DELETE"
    assert event.delivery_id == "11386543210987999"


def _foreign_token() -> str:
    return TestIssuer(kid="f5f4bf46e52b31d9b6249f7309ad0338400680cd").sign(claims())


def _tampered(issuer: TestIssuer) -> str:
    head, _, sig = issuer.sign(claims()).split(".")
    forged = issuer.sign(claims(email="attacker@evil.iam.gserviceaccount.com")).split(".")[1]
    return f"{head}.{forged}.{sig}"


FAILURES: list[tuple[str, Any, str]] = [
    ("wrong signature", lambda g: _foreign_token(), "signature does not verify"),
    ("tampered payload", _tampered, "signature does not verify"),
    ("expired", lambda g: g.sign(claims(exp=NOW - 120)), "expired"),
    ("no expiry", lambda g: g.sign(claims(exp=None)), "no expiry"),
    ("not yet valid", lambda g: g.sign(claims(nbf=NOW + 600)), "not valid yet"),
    ("issued in the future", lambda g: g.sign(claims(iat=NOW + 600)), "future"),
    ("wrong audience", lambda g: g.sign(claims(aud="https://other.example")), "audience"),
    ("wrong issuer", lambda g: g.sign(claims(iss="https://evil.example")), "issuer"),
    ("wrong email", lambda g: g.sign(claims(email="x@evil.iam.gserviceaccount.com")), "email"),
    ("email not verified", lambda g: g.sign(claims(email_verified=False)), "not verified"),
    ("alg none", lambda g: g.unsigned(claims()), "only RS256"),
    ("alg HS256", lambda g: g.hs256_with_public_key(claims()), "only RS256"),
    ("no kid", lambda g: g.sign(claims(), kid=None), "key id"),
    ("not a JWT", lambda g: "not-a-jwt", "not a JWT"),
    ("garbage header", lambda g: "!!!.e30.sig", "base64url|JSON"),
]


@pytest.mark.parametrize(
    ("token_of", "message"), [(f, m) for _, f, m in FAILURES], ids=[name for name, _, _ in FAILURES]
)
def test_verification_failures(google: TestIssuer, token_of: Any, message: str) -> None:
    with pytest.raises(AuthenticationFailed, match=message) as caught:
        gcr.verify(delivery(token_of(google)), credentials(google))
    assert not isinstance(caught.value, UnknownSigningKey)


def test_unknown_kid_raises_the_refreshable_error(google: TestIssuer) -> None:
    rotated = TestIssuer(kid="new-google-key")
    with pytest.raises(UnknownSigningKey) as caught:
        gcr.verify(delivery(rotated.sign(claims())), credentials(google))
    assert caught.value.kid == "new-google-key"
    assert server.answer_for(caught.value) == (401, "unauthorized")


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({}, "Authorization header missing"),
        ({"authorization": "Basic dXNlcjpwYXNz"}, "Bearer"),
        ({"authorization": "Bearer "}, "Bearer|empty"),
    ],
    ids=["missing", "basic", "empty"],
)
def test_header_failures(google: TestIssuer, headers: dict[str, str], message: str) -> None:
    push = RawDelivery(headers=headers, body=delivery_fixtures.body("gcr", "insert"))
    with pytest.raises(AuthenticationFailed, match=message):
        gcr.verify(push, credentials(google))


def test_no_keys_or_no_clock_fails_closed(google: TestIssuer) -> None:
    push = delivery(google.sign(claims()))
    with pytest.raises(AuthenticationFailed, match="keys"):
        gcr.verify(push, dataclasses.replace(credentials(google), oidc=None))
    with pytest.raises(AuthenticationFailed, match="clock"):
        gcr.verify(push, dataclasses.replace(credentials(google), now_s=0.0))


def test_token_is_never_echoed(google: TestIssuer) -> None:
    token = google.sign(claims(aud="https://other.example"))
    with pytest.raises(AuthenticationFailed) as caught:
        gcr.verify(delivery(token), credentials(google))
    assert token.split(".")[2] not in str(caught.value)


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b'{"message": {}}',
        b'{"message": {"data": "%%%not-base64%%%"}}',
        b'{"message": {"data": "bm90IGpzb24="}}',
        b'{"message": {"data": "eyJhY3Rpb24iOiJJTlNFUlQifQ=="}}',
    ],
    ids=["junk", "no-data", "bad-base64", "data-not-json", "insert-without-name"],
)
def test_malformed_bodies(body: bytes) -> None:
    with pytest.raises(MalformedPayload):
        gcr.parse(RawDelivery(headers={}, body=body))
