"""Flux's `quay` type: Quay.io / Red Hat Quay repository notifications.

Verification: none beyond the secret webhook path (Quay signs nothing). Every notification
kind goes to the same URL without an event header, so the body tells them apart: a
"Repository Push" carries `updated_tags` (a list; old Quay sent a tag -> image-id map) and
`docker_url` (`quay.io/ns/name`, the host included); every other notification (builds,
vulnerabilities, mirror syncs) names the `repository` without `updated_tags` and is Ignored.
A push can update several tags: `parse` returns one `ImagePush` per tag.
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


def parse(delivery: RawDelivery) -> tuple[Event, ...]:
    """One `ImagePush` per updated tag, in the payload's order; one without a tag when the
    push names none; never empty."""
    body = load_json_object(delivery.body)
    if "repository" in body and "updated_tags" not in body:
        kind = "build" if "build_id" in body else "notification"
        return (Ignored(source=TYPE_NAME, event=kind, reason=f"Quay {kind} is not a push"),)
    push = parse_model(_RepoPush, delivery.body, what="Quay repository push")
    repository = push.docker_url or image_payload.join_name("quay.io", push.repository)
    tags: list[str | None] = list(push.updated_tags) or [None]
    return tuple(
        ImagePush(source=TYPE_NAME, event=PUSH_EVENT, repository=repository, tag=tag)
        for tag in tags
    )


SOURCE = Source(
    type_name=TYPE_NAME,
    verify=no_verification,
    event_name=no_event,
    parse=parse,
)
