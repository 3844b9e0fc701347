"""generic-oidc: any configured issuer's RS256 ID token, Flux's default audience."""

from __future__ import annotations

from typing import Any

import pytest

from receiver.errors import AuthenticationFailed, UnknownSigningKey
from receiver.events import Signal
from receiver.sources import generic_oidc
from receiver.sources.base import Credentials, OidcSettings, RawDelivery
from tests.support.oidc_tokens import TestIssuer

NOW = 1_800_000_000.0
ISSUER = "https://token.actions.githubusercontent.com"


@pytest.fixture(scope="module")
def actions() -> TestIssuer:
    return TestIssuer(kid="actions-key")


def claims(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "iss": ISSUER,
        "aud": "notification-controller",
        "sub": "repo:acme-corp/podinfo:ref:refs/heads/main",
        "repository": "acme-corp/podinfo",
        "iat": NOW - 5,
        "exp": NOW + 300,
    }
    base.update(overrides)
    return base


def creds(issuer: TestIssuer, **settings: Any) -> Credentials:
    oidc = OidcSettings(keys=issuer.keys(), issuers=(ISSUER,), **settings)
    return Credentials(token=b"", now_s=NOW, oidc=oidc)


def request(token: str) -> RawDelivery:
    return RawDelivery(
        headers={"authorization": f"Bearer {token}", "x-request-id": "r-1"}, body=b"{}"
    )


def test_valid_token_is_a_signal(actions: TestIssuer) -> None:
    delivery = request(actions.sign(claims()))
    generic_oidc.verify(delivery, creds(actions))
    assert generic_oidc.parse(delivery) == (Signal(source="generic-oidc", delivery_id="r-1"),)


def test_configured_audience_replaces_the_default(actions: TestIssuer) -> None:
    token = actions.sign(claims(aud="flux"))
    generic_oidc.verify(request(token), creds(actions, audience="flux"))
    with pytest.raises(AuthenticationFailed, match="audience"):
        generic_oidc.verify(request(token), creds(actions))


@pytest.mark.parametrize(
    ("token_of", "message"),
    [
        (lambda i: TestIssuer(kid="actions-key").sign(claims()), "signature"),
        (lambda i: i.sign(claims(iss="https://evil.example")), "issuer"),
        (lambda i: i.sign(claims(aud="someone-else")), "audience"),
        (lambda i: i.sign(claims(exp=NOW - 3600)), "expired"),
        (lambda i: i.unsigned(claims()), "only RS256"),
        (lambda i: i.hs256_with_public_key(claims()), "only RS256"),
    ],
    ids=["foreign-key", "issuer", "audience", "expired", "alg-none", "alg-hs256"],
)
def test_verification_failures(actions: TestIssuer, token_of: Any, message: str) -> None:
    with pytest.raises(AuthenticationFailed, match=message):
        generic_oidc.verify(request(token_of(actions)), creds(actions))


def test_allowed_emails_when_configured(actions: TestIssuer) -> None:
    token = actions.sign(claims(email="bot@acme.example"))
    generic_oidc.verify(request(token), creds(actions, emails=("bot@acme.example",)))
    with pytest.raises(AuthenticationFailed, match="email"):
        generic_oidc.verify(request(token), creds(actions, emails=("other@acme.example",)))


def test_unknown_kid_and_missing_settings(actions: TestIssuer) -> None:
    with pytest.raises(UnknownSigningKey):
        generic_oidc.verify(request(TestIssuer(kid="rotated").sign(claims())), creds(actions))
    with pytest.raises(AuthenticationFailed, match="Authorization header missing"):
        generic_oidc.verify(RawDelivery(headers={}, body=b""), creds(actions))
    with pytest.raises(AuthenticationFailed, match="no OIDC provider"):
        generic_oidc.verify(request(actions.sign(claims())), Credentials(token=b"", now_s=NOW))
