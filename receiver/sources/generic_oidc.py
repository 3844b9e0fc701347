"""Flux's `generic-oidc` type: any caller holding an OIDC ID token from a configured issuer.

Verification: `Authorization: Bearer <JWT>`, RS256 against the issuer's JWKS (passed in as
`credentials.oidc.keys`), `iss` one of `credentials.oidc.issuers` (Flux: `spec.oidcProviders[].
issuerURL`), `aud` equal to `credentials.oidc.audience` or Flux's default
`notification-controller`, and unexpired. When `credentials.oidc.emails` is set the `email`
claim must be one of them. The provider is picked by the token's `iss` (`unverified_issuer`);
its CEL `variables` and `validations` are evaluated by the pipeline (`filtering.check_claims`).
Like Flux, the body is not read: an accepted request is a `Signal`.
Docs: https://fluxcd.io/flux/components/notification/receivers/ (generic-oidc)
Pure: no I/O, no clock reads.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from receiver.errors import AuthenticationFailed
from receiver.events import Event, Signal
from receiver.sources import id_token
from receiver.sources.base import Credentials, RawDelivery, Source, no_event

TYPE_NAME = "generic-oidc"
# Flux's `DefaultOIDCAudience`, used when a provider sets no audience.
DEFAULT_AUDIENCE = "notification-controller"
HINT = "send Authorization: Bearer <OIDC ID token>"


def verify(delivery: RawDelivery, credentials: Credentials) -> None:
    verified_claims(delivery, credentials)


def verified_claims(delivery: RawDelivery, credentials: Credentials) -> dict[str, Any]:
    """The token's claims once its signature, issuer, audience and lifetime check out."""
    oidc = credentials.oidc
    if oidc is None or not oidc.keys or not oidc.issuers:
        raise AuthenticationFailed("no OIDC provider keys loaded: check the receiver's issuers")
    if credentials.now_s <= 0:
        raise AuthenticationFailed("receiver clock unavailable: cannot check token expiry")
    token = id_token.bearer_token(delivery, hint=HINT)
    claims = id_token.verify_token(
        token,
        keys=oidc.keys,
        expect=id_token.Expectations(
            issuers=oidc.issuers,
            audience=oidc.audience or DEFAULT_AUDIENCE,
            now_s=credentials.now_s,
        ),
    )
    if oidc.emails and claims.get("email") not in oidc.emails:
        raise AuthenticationFailed("ID token email is not one of the allowed identities")
    return claims


def unverified_issuer(delivery: RawDelivery) -> str:
    """The `iss` claim, read before verification only to pick the Receiver's provider (as
    Flux does); nothing else of the token is trusted before its signature checks out."""
    token = id_token.bearer_token(delivery, hint=HINT)
    parts = token.split(".")
    if len(parts) != 3 or not token.isascii():
        raise AuthenticationFailed("bearer token is not a JWT (header.payload.signature)")
    try:
        payload = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (binascii.Error, ValueError):
        raise AuthenticationFailed("bearer token payload is not base64url JSON") from None
    issuer = payload.get("iss") if isinstance(payload, dict) else None
    if not isinstance(issuer, str) or not issuer:
        raise AuthenticationFailed("bearer token is missing the 'iss' claim")
    return issuer


def parse(delivery: RawDelivery) -> tuple[Event, ...]:
    return (Signal(source=TYPE_NAME, delivery_id=delivery.header("x-request-id")),)


SOURCE = Source(type_name=TYPE_NAME, verify=verify, event_name=no_event, parse=parse)
