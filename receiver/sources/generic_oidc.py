"""Flux's `generic-oidc` type: any caller holding an OIDC ID token from a configured issuer.

Verification: `Authorization: Bearer <JWT>`, RS256 against the issuer's JWKS (passed in as
`credentials.oidc.keys`), `iss` one of `credentials.oidc.issuers` (Flux: `spec.oidcProviders[].
issuerURL`), `aud` equal to `credentials.oidc.audience` or Flux's default
`notification-controller`, and unexpired. When `credentials.oidc.emails` is set the `email`
claim must be one of them. Flux's per-provider CEL `validations` are not evaluated here.
Like Flux, the body is not read: an accepted request is a `Signal`.
Docs: https://fluxcd.io/flux/components/notification/receivers/ (generic-oidc)
Pure: no I/O, no clock reads.
"""

from __future__ import annotations

from receiver.errors import AuthenticationFailed
from receiver.events import Event, Signal
from receiver.sources import id_token
from receiver.sources.base import Credentials, RawDelivery, Source, no_event

TYPE_NAME = "generic-oidc"
# Flux's `DefaultOIDCAudience`, used when a provider sets no audience.
DEFAULT_AUDIENCE = "notification-controller"


def verify(delivery: RawDelivery, credentials: Credentials) -> None:
    oidc = credentials.oidc
    if oidc is None or not oidc.keys or not oidc.issuers:
        raise AuthenticationFailed("no OIDC provider keys loaded: check the receiver's issuers")
    if credentials.now_s <= 0:
        raise AuthenticationFailed("receiver clock unavailable: cannot check token expiry")
    token = id_token.bearer_token(delivery, hint="send Authorization: Bearer <OIDC ID token>")
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


def parse(delivery: RawDelivery) -> tuple[Event, ...]:
    return (Signal(source=TYPE_NAME, delivery_id=delivery.header("x-request-id")),)


SOURCE = Source(type_name=TYPE_NAME, verify=verify, event_name=no_event, parse=parse)
