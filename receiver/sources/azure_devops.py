"""Azure DevOps (Repos) service-hook webhooks, for the discovery endpoints (Flux has no type).

Verification: `Authorization: Basic` with the username and password the service hook was
given, checked in constant time against the `username`/`password` keys of the Secret. The
event type is in the body (`eventType`: `git.push`); its `id` is the delivery id. A push lists
`resource.refUpdates[]` (several refs at once: one `GitPush` each) and commits without file lists,
so `changed_paths` is None.
Docs: https://learn.microsoft.com/azure/devops/service-hooks/events#code-pushed
Pure: no I/O.
"""

from __future__ import annotations

import base64
import binascii

from pydantic import BaseModel, ConfigDict

from receiver.errors import AuthenticationFailed, MalformedPayload, RequestRejected
from receiver.events import Event, GitPush, Signal
from receiver.sources import git_payload
from receiver.sources.base import (
    Credentials,
    RawDelivery,
    Source,
    load_json_object,
    parse_model,
    require_header,
    token_matches,
)

TYPE_NAME = "azure-devops"
PUSH_EVENT = "git.push"
_BRANCH_PREFIX = "refs/heads/"


class _Project(BaseModel):
    model_config = ConfigDict(extra="ignore")

    name: str | None = None


class _Repository(BaseModel):
    model_config = ConfigDict(extra="ignore")

    name: str | None = None
    remoteUrl: str | None = None
    sshUrl: str | None = None
    webUrl: str | None = None
    defaultBranch: str | None = None
    project: _Project | None = None


class _RefUpdate(BaseModel):
    model_config = ConfigDict(extra="ignore")

    name: str
    oldObjectId: str | None = None
    newObjectId: str | None = None


class _PushResource(BaseModel):
    model_config = ConfigDict(extra="ignore")

    refUpdates: list[_RefUpdate]
    repository: _Repository


class _PushNotification(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: str | None = None
    eventType: str
    resource: _PushResource


def event_name(delivery: RawDelivery) -> str | None:
    """`eventType` from the body, or None when the body is not a JSON object naming one."""
    try:
        value = load_json_object(delivery.body).get("eventType")
    except RequestRejected:
        return None
    return value if isinstance(value, str) else None


def verify(delivery: RawDelivery, credentials: Credentials) -> None:
    username = credentials.secret_data.get("username")
    password = credentials.secret_data.get("password")
    if not username or not password:
        raise AuthenticationFailed(
            "the receiver's Secret has no username/password keys: add the basic-auth"
            " credentials set on the Azure DevOps service hook"
        )
    scheme, _, encoded = require_header(
        delivery, "Authorization", hint="set a basic-auth username and password on the service hook"
    ).partition(" ")
    if scheme.lower() != "basic":
        raise AuthenticationFailed("Authorization is not Basic: use basic authentication")
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise AuthenticationFailed("Authorization Basic credentials are not valid base64") from None
    given_user, _, given_password = decoded.partition(b":")
    # Both comparisons always run, so the answer time does not tell which part was wrong.
    user_ok = token_matches(expected=username, given=given_user)
    password_ok = token_matches(expected=password, given=given_password)
    if not (user_ok and password_ok):
        raise AuthenticationFailed("Authorization Basic credentials do not match the receiver's")


def parse(delivery: RawDelivery) -> tuple[Event, ...]:
    """One `GitPush` per updated ref of a `git.push`; a `Signal` for any other event type."""
    body = load_json_object(delivery.body)
    event = body.get("eventType")
    if not isinstance(event, str):
        raise MalformedPayload("not an Azure DevOps service hook notification: no eventType")
    if event != PUSH_EVENT:
        did = body.get("id")
        return (
            Signal(
                source=TYPE_NAME, event=event, delivery_id=did if isinstance(did, str) else None
            ),
        )
    push = parse_model(_PushNotification, delivery.body, what="Azure DevOps git.push")
    repo = push.resource.repository
    urls = git_payload.present([repo.remoteUrl, repo.sshUrl, repo.webUrl])
    default_branch = repo.defaultBranch
    if default_branch and default_branch.startswith(_BRANCH_PREFIX):
        default_branch = default_branch[len(_BRANCH_PREFIX) :]
    name = f"{repo.project.name}/{repo.name}" if repo.project and repo.project.name else repo.name
    pushes = tuple(
        GitPush(
            source=TYPE_NAME,
            event=PUSH_EVENT,
            repo_urls=urls,
            ref=update.name,
            before=update.oldObjectId,
            after=None if git_payload.is_zero_sha(update.newObjectId) else update.newObjectId,
            deleted=git_payload.is_zero_sha(update.newObjectId),
            default_branch=default_branch,
            delivery_id=push.id,
            repo_name=name,
        )
        for update in push.resource.refUpdates
    )
    return pushes or (Signal(source=TYPE_NAME, event=PUSH_EVENT, delivery_id=push.id),)


SOURCE = Source(
    type_name=TYPE_NAME,
    verify=verify,
    event_name=event_name,
    parse=parse,
    uses_token=False,
)
