"""Flux's `bitbucket` type: Bitbucket Data Center/Server and Bitbucket Cloud webhooks.

Verification as Flux does it (go-github's ValidatePayload): `X-Hub-Signature-256`, else
`X-Hub-Signature`, `<algo>=<hex>` HMAC of the raw body; both Bitbucket editions send
`X-Hub-Signature: sha256=<hex>` once the webhook has a secret. Event: `X-Event-Key`
(`repo:refs_changed` on Server, `repo:push` on Cloud; Server's "Test connection" sends
`diagnostics:ping`, answered 2xx without reconcile). Delivery id: `X-Request-Id` (Server),
`X-Request-UUID` (Cloud). A Cloud repository is named by `links.html.href` and by `full_name`
(`bitbucket.org/<full_name>`). Neither edition lists changed files, so `changed_paths` is None.
One delivery can change several refs: `parse` returns one `GitPush` per change.
Docs: https://confluence.atlassian.com/bitbucketserver/event-payload-938025882.html,
https://support.atlassian.com/bitbucket-cloud/docs/event-payloads/
Pure: no I/O.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from receiver.events import Event, GitPush, Ignored, Signal
from receiver.sources import git_payload
from receiver.sources.base import (
    Credentials,
    RawDelivery,
    Source,
    json_document,
    parse_model,
    verify_hmac_header,
)

TYPE_NAME = "bitbucket"
SERVER_PUSH = "repo:refs_changed"
CLOUD_PUSH = "repo:push"
PING = "diagnostics:ping"
CLOUD_HOST = "bitbucket.org"
_CLOUD_REF_PREFIXES = {
    "branch": "refs/heads/",
    "named_branch": "refs/heads/",
    "tag": "refs/tags/",
    "annotated_tag": "refs/tags/",
}


class _Link(BaseModel):
    model_config = ConfigDict(extra="ignore")

    href: str | None = None
    name: str | None = None


class _ServerLinks(BaseModel):
    model_config = ConfigDict(extra="ignore")

    clone: list[_Link] = []
    self_: list[_Link] = Field(default=[], alias="self")


class _ServerProject(BaseModel):
    model_config = ConfigDict(extra="ignore")

    key: str | None = None


class _ServerRepository(BaseModel):
    model_config = ConfigDict(extra="ignore")

    slug: str | None = None
    project: _ServerProject | None = None
    links: _ServerLinks = _ServerLinks()


class _ServerRef(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: str


class _ServerChange(BaseModel):
    model_config = ConfigDict(extra="ignore")

    ref: _ServerRef | None = None
    refId: str | None = None
    fromHash: str | None = None
    toHash: str | None = None
    type: Literal["ADD", "UPDATE", "DELETE"]


class _ServerPush(BaseModel):
    model_config = ConfigDict(extra="ignore")

    repository: _ServerRepository
    changes: list[_ServerChange]


class _CloudTarget(BaseModel):
    model_config = ConfigDict(extra="ignore")

    hash: str | None = None


class _CloudRef(BaseModel):
    model_config = ConfigDict(extra="ignore")

    type: str
    name: str
    target: _CloudTarget | None = None


class _CloudChange(BaseModel):
    model_config = ConfigDict(extra="ignore")

    new: _CloudRef | None = None
    old: _CloudRef | None = None


class _CloudPushBody(BaseModel):
    model_config = ConfigDict(extra="ignore")

    changes: list[_CloudChange]


class _CloudLinks(BaseModel):
    model_config = ConfigDict(extra="ignore")

    html: _Link | None = None


class _CloudRepository(BaseModel):
    model_config = ConfigDict(extra="ignore")

    full_name: str | None = None
    links: _CloudLinks = _CloudLinks()


class _CloudPush(BaseModel):
    model_config = ConfigDict(extra="ignore")

    push: _CloudPushBody
    repository: _CloudRepository


def event_name(delivery: RawDelivery) -> str | None:
    return delivery.header("x-event-key")


def delivery_id(delivery: RawDelivery) -> str | None:
    return delivery.header("x-request-id") or delivery.header("x-request-uuid")


def verify(delivery: RawDelivery, credentials: Credentials) -> None:
    header = "X-Hub-Signature-256" if delivery.header("x-hub-signature-256") else "X-Hub-Signature"
    verify_hmac_header(
        delivery,
        credentials,
        header=header,
        hint="set a secret on the Bitbucket webhook (it then sends X-Hub-Signature)",
    )


def parse(delivery: RawDelivery) -> tuple[Event, ...]:
    """Every ref the delivery changed, in the payload's order; never empty.

    A push that names no change (and any other event) is a `Signal`: Flux reconciles on it.
    """
    event = event_name(delivery) or ""
    did = delivery_id(delivery)
    if event == PING:
        return (Ignored(source=TYPE_NAME, event=event, reason="ping", delivery_id=did),)
    pushes: tuple[GitPush, ...] = ()
    if event == SERVER_PUSH:
        server = parse_model(_ServerPush, json_document(delivery), what="Bitbucket Server push")
        pushes = _server_pushes(server, event=event, delivery_id=did)
    elif event == CLOUD_PUSH:
        cloud = parse_model(_CloudPush, json_document(delivery), what="Bitbucket Cloud push")
        pushes = _cloud_pushes(cloud, event=event, delivery_id=did)
    return pushes or (Signal(source=TYPE_NAME, event=event, delivery_id=did),)


def _server_pushes(
    push: _ServerPush, *, event: str, delivery_id: str | None
) -> tuple[GitPush, ...]:
    repo = push.repository
    urls = git_payload.present(
        [link.href for link in repo.links.clone] + [link.href for link in repo.links.self_]
    )
    name = f"{repo.project.key}/{repo.slug}" if repo.project and repo.project.key else repo.slug
    pushes = []
    for change in push.changes:
        ref = change.ref.id if change.ref else change.refId
        if not ref:
            continue
        deleted = change.type == "DELETE" or git_payload.is_zero_sha(change.toHash)
        pushes.append(
            GitPush(
                source=TYPE_NAME,
                event=event,
                repo_urls=urls,
                ref=ref,
                before=change.fromHash,
                after=None if deleted else change.toHash,
                deleted=deleted,
                delivery_id=delivery_id,
                repo_name=name,
            )
        )
    return tuple(pushes)


def _cloud_pushes(push: _CloudPush, *, event: str, delivery_id: str | None) -> tuple[GitPush, ...]:
    repo = push.repository
    # `full_name` names the repository whatever the links say (absent or odd on some hooks).
    by_name = f"https://{CLOUD_HOST}/{repo.full_name}" if repo.full_name else None
    urls = git_payload.present([repo.links.html.href if repo.links.html else None, by_name])
    pushes = []
    for change in push.push.changes:
        named = change.new or change.old
        prefix = _CLOUD_REF_PREFIXES.get(named.type) if named else None
        if named is None or prefix is None:
            continue
        pushes.append(
            GitPush(
                source=TYPE_NAME,
                event=event,
                repo_urls=urls,
                ref=prefix + named.name,
                before=_target_hash(change.old),
                after=_target_hash(change.new),
                deleted=change.new is None,
                delivery_id=delivery_id,
                repo_name=repo.full_name,
            )
        )
    return tuple(pushes)


def _target_hash(ref: _CloudRef | None) -> str | None:
    return ref.target.hash if ref and ref.target else None


SOURCE = Source(type_name=TYPE_NAME, verify=verify, event_name=event_name, parse=parse)
