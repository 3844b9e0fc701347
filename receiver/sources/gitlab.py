"""GitLab project, group and system hooks.

Verification: `X-Gitlab-Token` equals the shared token (constant time). Event type:
`X-Gitlab-Event` (`Push Hook`, `Tag Push Hook`, `System Hook`, ...); delivery id:
`X-Gitlab-Event-UUID`. System hooks carry
`event_name` `push`/`tag_push` (and `object_kind` on newer versions) with the same body.
A push lists at most 20 commits, with the real count in `total_commits_count`; a push to a
new ref has no usable file list.
Docs: https://docs.gitlab.com/user/project/integrations/webhook_events/#push-events
Pure: no I/O.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from receiver.errors import AuthenticationFailed
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

_PUSH_KINDS = frozenset({"push", "tag_push"})
# Project and group hooks name a push in the header too; the body must then be a push.
_PUSH_HOOK_EVENTS = frozenset({"Push Hook", "Tag Push Hook"})


class _Project(BaseModel):
    model_config = ConfigDict(extra="ignore")

    git_http_url: str | None = None
    git_ssh_url: str | None = None
    web_url: str | None = None
    http_url: str | None = None
    ssh_url: str | None = None
    path_with_namespace: str | None = None
    default_branch: str | None = None


class _Repository(BaseModel):
    model_config = ConfigDict(extra="ignore")

    url: str | None = None
    homepage: str | None = None
    git_http_url: str | None = None
    git_ssh_url: str | None = None


class _PushHook(BaseModel):
    model_config = ConfigDict(extra="ignore")

    object_kind: str | None = None
    ref: str
    before: str | None = None
    after: str | None = None
    checkout_sha: str | None = None
    project: _Project
    repository: _Repository | None = None
    commits: list[git_payload.PushedCommit] | None = None
    total_commits_count: int | None = None


def event_name(delivery: RawDelivery) -> str | None:
    return delivery.header("x-gitlab-event")


def verify(delivery: RawDelivery, credentials: Credentials) -> None:
    given = require_header(delivery, "X-Gitlab-Token", hint="set a secret token on the webhook")
    if not token_matches(expected=credentials.token, given=given):
        raise AuthenticationFailed("X-Gitlab-Token does not match the receiver's token")


def parse(delivery: RawDelivery) -> tuple[Event, ...]:
    event = event_name(delivery) or ""
    did = delivery.header("x-gitlab-event-uuid")
    body = load_json_object(delivery.body)
    # System hooks name the event in `event_name`; their push bodies may lack `object_kind`.
    kind = body.get("object_kind") or body.get("event_name")
    if event not in _PUSH_HOOK_EVENTS and not (isinstance(kind, str) and kind in _PUSH_KINDS):
        return (Signal(source="gitlab", event=event, delivery_id=did),)
    hook = parse_model(_PushHook, delivery.body, what="GitLab push")
    project, repo = hook.project, hook.repository or _Repository()
    commits = hook.commits or []
    # A new ref (zero `before`) has no previous state to diff against.
    complete = not git_payload.is_zero_sha(hook.before) and (
        hook.total_commits_count is None or hook.total_commits_count <= len(commits)
    )
    deleted = git_payload.is_zero_sha(hook.after)
    return (
        GitPush(
            source="gitlab",
            event=event,
            repo_urls=git_payload.present(
                [
                    project.git_http_url,
                    project.git_ssh_url,
                    project.web_url,
                    project.http_url,
                    project.ssh_url,
                    repo.git_http_url,
                    repo.git_ssh_url,
                    repo.homepage,
                ]
            ),
            ref=hook.ref,
            before=hook.before,
            after=None if deleted else (hook.checkout_sha or hook.after),
            deleted=deleted,
            default_branch=project.default_branch,
            changed_paths=git_payload.changed_paths(commits, complete=complete),
            delivery_id=did,
            repo_name=project.path_with_namespace,
        ),
    )


SOURCE = Source(type_name="gitlab", verify=verify, event_name=event_name, parse=parse)
