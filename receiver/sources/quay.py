"""Flux's `quay` type: Quay.io / Red Hat Quay repository notifications.

Verification: none beyond the secret webhook path (Quay signs nothing). Every notification
kind goes to the same URL without an event header, so the body tells them apart: a
"Repository Push" carries `updated_tags` (a list; old Quay sent a tag -> image-id map) and
`docker_url` (`quay.io/ns/name`, the host included); every other notification (builds,
vulnerabilities, mirror syncs) names the `repository` without `updated_tags` and is Ignored.
Several tags per push: the first one is returned (see the report on multi-event deliveries).
Docs: https://docs.redhat.com/en/documentation/red_hat_quay/3/html/use_red_hat_quay/repository_notifications
Pure: no I/O.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from receiver.events import Event, Ignored, ImagePush
from receiver.sources import image_payload
from receiver.sources.base import (
    RawDelivery,
    Source,
    load_json_object,
    no_event,
    no_verification,
    parse_model,
)

TYPE_NAME = "quay"
PUSH_EVENT = "repo_push"


class _RepoPush(BaseModel):
    model_config = ConfigDict(extra="ignore")

    docker_url: str | None = None
    repository: str
    namespace: str | None = None
    name: str | None = None
    homepage: str | None = None
    updated_tags: list[str] | dict[str, str]


def parse(delivery: RawDelivery) -> Event:
    body = load_json_object(delivery.body)
    if "repository" in body and "updated_tags" not in body:
        kind = "build" if "build_id" in body else "notification"
        return Ignored(source=TYPE_NAME, event=kind, reason=f"Quay {kind} is not a push")
    push = parse_model(_RepoPush, delivery.body, what="Quay repository push")
    tags = list(push.updated_tags)
    return ImagePush(
        source=TYPE_NAME,
        event=PUSH_EVENT,
        repository=push.docker_url or image_payload.join_name("quay.io", push.repository),
        tag=tags[0] if tags else None,
    )


SOURCE = Source(type_name=TYPE_NAME, verify=no_verification, event_name=no_event, parse=parse)
