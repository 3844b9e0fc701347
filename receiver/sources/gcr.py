"""Flux's `gcr` type: Google Artifact Registry / Container Registry notifications via Pub/Sub push.

Verification (as Flux >= 2.8 does it): `Authorization: Bearer <Google-signed OIDC ID token>`,
RS256 against Google's JWKS (passed in as `credentials.oidc.keys`), issuer `accounts.google.com`
or `https://accounts.google.com`, `aud` equal to the Secret's `audience` key, `email` equal to
the Secret's `email` key, and `email_verified` true. Like Flux, a Secret without `audience` or
`email` skips that one check (Flux plans to require both); `email_verified` is always required.
Body: Pub/Sub push envelope, `message.data` = base64 JSON `{"action", "digest", "tag"}`.
Docs: https://cloud.google.com/artifact-registry/docs/configure-notifications
      https://cloud.google.com/pubsub/docs/authenticate-push-subscriptions
Pure: no I/O, no clock reads (`credentials.now_s`).
"""

from __future__ import annotations

import base64
import binascii

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, ValidationError

from receiver.errors import AuthenticationFailed, MalformedPayload
from receiver.events import Event, Ignored, ImagePush
from receiver.sources import id_token, image_payload
from receiver.sources.base import Credentials, RawDelivery, Source, no_event, parse_model

TYPE_NAME = "gcr"
GOOGLE_ISSUERS = ("accounts.google.com", "https://accounts.google.com")
_PUSH_ACTIONS = frozenset({"INSERT"})


class _Message(BaseModel):
    model_config = ConfigDict(extra="ignore")

    data: str
    message_id: str | None = Field(
        default=None, validation_alias=AliasChoices("messageId", "message_id")
    )


class _Envelope(BaseModel):
    model_config = ConfigDict(extra="ignore")

    message: _Message
    subscription: str | None = None


class _Notification(BaseModel):
    model_config = ConfigDict(extra="ignore")

    action: str
    digest: str | None = None
    tag: str | None = None


def _secret_text(credentials: Credentials, key: str) -> str | None:
    raw = credentials.secret_data.get(key)
    if not raw:
        return None
    try:
        return raw.decode().strip() or None
    except UnicodeDecodeError:
        raise AuthenticationFailed(f"the receiver Secret's {key!r} key is not UTF-8") from None


def verify(delivery: RawDelivery, credentials: Credentials) -> None:
    oidc = credentials.oidc
    if oidc is None or not oidc.keys:
        raise AuthenticationFailed("Google signing keys are not loaded: check the JWKS setting")
    if credentials.now_s <= 0:
        raise AuthenticationFailed("receiver clock unavailable: cannot check token expiry")
    token = id_token.bearer_token(
        delivery, hint="enable authentication on the Pub/Sub push subscription"
    )
    audience = _secret_text(credentials, "audience") or oidc.audience
    email = _secret_text(credentials, "email")
    emails = (email,) if email else oidc.emails
    claims = id_token.verify_token(
        token,
        keys=oidc.keys,
        expect=id_token.Expectations(
            issuers=GOOGLE_ISSUERS, audience=audience, now_s=credentials.now_s
        ),
    )
    given = claims.get("email")
    if emails and given not in emails:
        raise AuthenticationFailed(
            "ID token email is not the push subscription's service account: check 'email'"
        )
    if claims.get("email_verified") is not True:
        raise AuthenticationFailed("ID token email is not verified")


def decode_notification(delivery: RawDelivery) -> tuple[_Notification, str | None]:
    """Unwrap the Pub/Sub envelope: the registry notification and the message id."""
    envelope = parse_model(_Envelope, delivery.body, what="Pub/Sub push")
    try:
        data = base64.b64decode(envelope.message.data, validate=True)
    except (binascii.Error, ValueError):
        raise MalformedPayload("message.data is not base64") from None
    try:
        notification = _Notification.model_validate_json(data)
    except ValidationError:
        raise MalformedPayload("message.data is not an Artifact Registry notification") from None
    return notification, envelope.message.message_id


def parse(delivery: RawDelivery) -> tuple[Event, ...]:
    notification, did = decode_notification(delivery)
    action = notification.action.upper()
    if action not in _PUSH_ACTIONS:
        return (
            Ignored(
                source=TYPE_NAME, event=action, reason=f"{action} is not a push", delivery_id=did
            ),
        )
    tagged = image_payload.split_reference(notification.tag) if notification.tag else None
    pinned = image_payload.split_reference(notification.digest) if notification.digest else None
    named = tagged or pinned
    if named is None or not named.name:
        raise MalformedPayload("notification names neither a tag nor a digest")
    return (
        ImagePush(
            source=TYPE_NAME,
            event=action,
            repository=named.name,
            tag=tagged.tag if tagged else None,
            digest=pinned.digest if pinned else None,
            delivery_id=did,
        ),
    )


SOURCE = Source(type_name=TYPE_NAME, verify=verify, event_name=no_event, parse=parse)
