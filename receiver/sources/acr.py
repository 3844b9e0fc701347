"""Flux's `acr` type: Azure Container Registry webhooks.

Verification: none beyond the secret webhook path (ACR signs nothing; it can send custom
headers, which Flux does not check). Body: `action` (`push`, `delete`, `quarantine`,
`chart_push`, `chart_delete`, `ping`), `target.{repository, tag, digest, mediaType}`,
`request.host` (`myregistry.azurecr.io`), `id`. `ping` and deletions are Ignored;
`chart_push` (legacy ACR Helm repositories, no OCI name) is a Signal.
Docs: https://learn.microsoft.com/azure/container-registry/container-registry-webhook-reference
Pure: no I/O.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from receiver.events import Event, Ignored, ImagePush, Signal
from receiver.sources import image_payload
from receiver.sources.base import RawDelivery, Source, no_event, no_verification, parse_model

TYPE_NAME = "acr"


class _Target(BaseModel):
    model_config = ConfigDict(extra="ignore")

    repository: str | None = None
    tag: str | None = None
    digest: str | None = None


class _Request(BaseModel):
    model_config = ConfigDict(extra="ignore")

    host: str | None = None


class _Webhook(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: str | None = None
    action: str
    target: _Target | None = None
    request: _Request | None = None


def parse(delivery: RawDelivery) -> tuple[Event, ...]:
    hook = parse_model(_Webhook, delivery.body, what="ACR webhook")
    if hook.action == "chart_push":
        return (Signal(source=TYPE_NAME, event=hook.action, delivery_id=hook.id),)
    if hook.action != "push":
        reason = "ping" if hook.action == "ping" else f"{hook.action} is not a push"
        return (Ignored(source=TYPE_NAME, event=hook.action, reason=reason, delivery_id=hook.id),)
    target = hook.target or _Target()
    host = hook.request.host if hook.request else None
    if not target.repository or not host:
        # ACR always names both; without the host the image cannot be routed.
        return (Signal(source=TYPE_NAME, event=hook.action, delivery_id=hook.id),)
    return (
        ImagePush(
            source=TYPE_NAME,
            event=hook.action,
            repository=image_payload.join_name(host, target.repository),
            tag=target.tag or None,
            digest=target.digest,
            delivery_id=hook.id,
        ),
    )


SOURCE = Source(type_name=TYPE_NAME, verify=no_verification, event_name=no_event, parse=parse)
