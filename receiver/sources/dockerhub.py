"""Flux's `dockerhub` type: Docker Hub repository webhooks.

Verification: none beyond the secret webhook path (Docker Hub signs nothing and sends no
event header). Docker Hub sends only pushes: `push_data.tag` and `repository.repo_name`
(`org/app`, or `library/nginx`/`nginx` for official images), always on `docker.io`.
Docs: https://docs.docker.com/docker-hub/repos/manage/webhooks/
Pure: no I/O.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from receiver.errors import MalformedPayload
from receiver.events import Event, ImagePush
from receiver.sources import image_payload
from receiver.sources.base import RawDelivery, Source, no_event, no_verification, parse_model

TYPE_NAME = "dockerhub"
REGISTRY_HOST = "docker.io"


class _PushData(BaseModel):
    model_config = ConfigDict(extra="ignore")

    tag: str | None = None
    pusher: str | None = None


class _Repository(BaseModel):
    model_config = ConfigDict(extra="ignore")

    repo_name: str | None = None
    namespace: str | None = None
    name: str | None = None


class _Webhook(BaseModel):
    model_config = ConfigDict(extra="ignore")

    push_data: _PushData
    repository: _Repository
    callback_url: str | None = None


def parse(delivery: RawDelivery) -> tuple[Event, ...]:
    hook = parse_model(_Webhook, delivery.body, what="Docker Hub webhook")
    repo = hook.repository
    name = repo.repo_name or (
        f"{repo.namespace}/{repo.name}" if repo.namespace and repo.name else None
    )
    if not name:
        raise MalformedPayload("not a Docker Hub webhook payload: repository.repo_name missing")
    return (
        ImagePush(
            source=TYPE_NAME,
            event="push",
            repository=image_payload.join_name(REGISTRY_HOST, name),
            tag=hook.push_data.tag or None,
            delivery_id=delivery.header("x-request-id"),
        ),
    )


SOURCE = Source(type_name=TYPE_NAME, verify=no_verification, event_name=no_event, parse=parse)
