"""Flux's `harbor` type: Harbor project webhooks (the Default and the CloudEvents payload formats).

Verification: the `Authorization` header equals the receiver token exactly (Harbor's "Auth
Header" field sends it verbatim); compared in constant time, where Flux uses `!=`.
Pushes: Default format `type: PUSH_ARTIFACT`, CloudEvents `type: harbor.artifact.pushed`, with
`event_data`/`data` `.resources[].resource_url` (`host/project/repo:tag`), `.tag`, `.digest`.
Other event types (pull, delete, scan, quota, replication) are Ignored. A push can list several
resources: `parse` returns one `ImagePush` per resource with a URL.
Docs: https://goharbor.io/docs/main/working-with-projects/project-configuration/configure-webhooks/
Pure: no I/O.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from receiver.errors import AuthenticationFailed
from receiver.events import Event, Ignored, ImagePush, Signal
from receiver.sources import image_payload
from receiver.sources.base import (
    Credentials,
    RawDelivery,
    Source,
    parse_model,
    require_header,
    token_matches,
)

TYPE_NAME = "harbor"
_PUSH_TYPES = frozenset({"PUSH_ARTIFACT", "harbor.artifact.pushed"})
# Harbor 2.x with ChartMuseum: a chart upload names no OCI image, so it cannot be routed.
_CHART_TYPES = frozenset({"UPLOAD_CHART", "harbor.chart.uploaded"})


class _Resource(BaseModel):
    model_config = ConfigDict(extra="ignore")

    digest: str | None = None
    tag: str | None = None
    resource_url: str | None = None


class _Repository(BaseModel):
    model_config = ConfigDict(extra="ignore")

    name: str | None = None
    namespace: str | None = None
    repo_full_name: str | None = None


class _EventData(BaseModel):
    model_config = ConfigDict(extra="ignore")

    resources: list[_Resource] = []
    repository: _Repository | None = None


class _Envelope(BaseModel):
    """Default format: `type` + `event_data`; CloudEvents: `type` + `data` (+ `id`)."""

    model_config = ConfigDict(extra="ignore")

    type: str
    id: str | None = None
    event_data: _EventData | None = None
    data: _EventData | None = None


def event_name(delivery: RawDelivery) -> str | None:
    return delivery.header("ce-type")


def verify(delivery: RawDelivery, credentials: Credentials) -> None:
    given = require_header(
        delivery, "Authorization", hint="set the webhook's Auth Header to the receiver token"
    )
    if not token_matches(expected=credentials.token, given=given):
        raise AuthenticationFailed("Authorization header does not match the receiver's token")


def parse(delivery: RawDelivery) -> tuple[Event, ...]:
    """One `ImagePush` per pushed resource, in the payload's order; never empty."""
    hook = parse_model(_Envelope, delivery.body, what="Harbor webhook")
    did = hook.id or delivery.header("ce-id")
    if hook.type in _CHART_TYPES:
        return (Signal(source=TYPE_NAME, event=hook.type, delivery_id=did),)
    if hook.type not in _PUSH_TYPES:
        return (
            Ignored(
                source=TYPE_NAME,
                event=hook.type,
                reason=f"{hook.type} is not a push",
                delivery_id=did,
            ),
        )
    data = hook.event_data or hook.data or _EventData()
    pushes: list[Event] = []
    for resource in data.resources:
        if not resource.resource_url:
            continue
        ref = image_payload.split_reference(resource.resource_url)
        pushes.append(
            ImagePush(
                source=TYPE_NAME,
                event=hook.type,
                repository=ref.name,
                tag=resource.tag or ref.tag,
                digest=resource.digest or ref.digest,
                delivery_id=did,
            )
        )
    # A push whose resources carry no URL: the registry host is unknown, so it cannot be routed.
    return tuple(pushes) or (Signal(source=TYPE_NAME, event=hook.type, delivery_id=did),)


SOURCE = Source(type_name=TYPE_NAME, verify=verify, event_name=event_name, parse=parse)
