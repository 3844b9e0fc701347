"""CNCF distribution (`registry:2`/`registry:3`) notifications, also GitLab's container registry.

Discovery only: Flux has no type for it. Verification: the `Authorization` header equals the
token or `Bearer <token>` (set under the endpoint's `headers` in the registry's `notifications`
config); constant-time. Body: the envelope (media type
`application/vnd.docker.distribution.events.v1+json`)
`{"events": [...]}`, each with `action`, `target.{repository, tag, digest, mediaType, url}` and
`request.host` (the host the client pushed to). A push uploads blobs before the manifest; only
an `action: push` of a manifest media type is a push event. An envelope can hold several:
`parse` returns one event per manifest push.
Docs: https://distribution.github.io/distribution/about/notifications/
Pure: no I/O.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field

from receiver.errors import AuthenticationFailed
from receiver.events import Event, Ignored, ImagePush, Signal
from receiver.sources import image_payload
from receiver.sources.base import (
    Credentials,
    RawDelivery,
    Source,
    no_event,
    parse_model,
    require_header,
    token_matches,
)

TYPE_NAME = "distribution"
ENVELOPE_MEDIA_TYPE = "application/vnd.docker.distribution.events.v1+json"


class _Target(BaseModel):
    model_config = ConfigDict(extra="ignore")

    media_type: str | None = Field(default=None, alias="mediaType")
    digest: str | None = None
    repository: str | None = None
    tag: str | None = None
    url: str | None = None


class _Request(BaseModel):
    model_config = ConfigDict(extra="ignore")

    host: str | None = None


class _Event(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: str | None = None
    action: str
    target: _Target | None = None
    request: _Request | None = None


class _Envelope(BaseModel):
    model_config = ConfigDict(extra="ignore")

    events: list[_Event]


def verify(delivery: RawDelivery, credentials: Credentials) -> None:
    given = require_header(
        delivery,
        "Authorization",
        hint="add 'Authorization: [Bearer <token>]' to the endpoint's headers in the registry",
    )
    bearer = b"Bearer " + credentials.token
    plain = token_matches(expected=credentials.token, given=given)
    if not (token_matches(expected=bearer, given=given) or plain):
        raise AuthenticationFailed("Authorization header does not match the receiver's token")


def is_manifest_push(event: _Event) -> bool:
    target = event.target
    if event.action != "push" or target is None or not target.repository:
        return False
    return bool(target.tag) or target.media_type in image_payload.MANIFEST_MEDIA_TYPES


def _host(event: _Event) -> str | None:
    if event.request and event.request.host:
        return event.request.host
    url = event.target.url if event.target else None
    return urlsplit(url).netloc or None if url else None


def parse(delivery: RawDelivery) -> tuple[Event, ...]:
    """One event per manifest push of the envelope, in its order; never empty.

    An envelope with no manifest push (blob uploads, pulls) is one `Ignored`.
    """
    envelope = parse_model(_Envelope, delivery.body, what="distribution notification")
    pushes = [event for event in envelope.events if is_manifest_push(event)]
    if not pushes:
        actions = sorted({event.action for event in envelope.events}) or ["none"]
        first_id = envelope.events[0].id if envelope.events else None
        return (
            Ignored(
                source=TYPE_NAME,
                event=",".join(actions),
                reason="no manifest push in the envelope",
                delivery_id=first_id,
            ),
        )
    return tuple(_push(event) for event in pushes)


def _push(event: _Event) -> Event:
    assert event.target is not None and event.target.repository
    host = _host(event)
    if host is None:
        # Without the host the image cannot be told apart from a Docker Hub one.
        return Signal(source=TYPE_NAME, event="push", delivery_id=event.id)
    return ImagePush(
        source=TYPE_NAME,
        event="push",
        repository=image_payload.join_name(host, event.target.repository),
        tag=event.target.tag or None,
        digest=event.target.digest,
        delivery_id=event.id,
    )


SOURCE = Source(type_name=TYPE_NAME, verify=verify, event_name=no_event, parse=parse)
