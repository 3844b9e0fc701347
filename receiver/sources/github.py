"""GitHub (and Gitea/Forgejo, which Flux serves through `type: github`).

Verification: `X-Hub-Signature-256` (`sha256=<hex>` HMAC of the raw body) when present, else
`X-Hub-Signature` (`sha1=`, also `sha256=`/`sha512=`). Event type: `X-GitHub-Event` (Gitea
also sends `X-Gitea-Event`); delivery id: `X-GitHub-Delivery`. Gitea pushes carry
`total_commits` next to a capped `commits` list; a push to a new ref has no usable file list.
Docs: https://docs.github.com/en/webhooks/webhook-events-and-payloads#push
Pure: no I/O.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

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

# GitHub's push payload lists at most this many commits; a longer push is truncated.
MAX_LISTED_COMMITS = 2048
_PUSH_EVENTS = frozenset({"push"})


class _Repository(BaseModel):
    model_config = ConfigDict(extra="ignore")

    clone_url: str | None = None
    ssh_url: str | None = None
    git_url: str | None = None
    html_url: str | None = None
    full_name: str | None = None
    default_branch: str | None = None


class _PushEvent(BaseModel):
    model_config = ConfigDict(extra="ignore")

    ref: str
    before: str | None = None
    after: str | None = None
    deleted: bool = False
    forced: bool = False
    repository: _Repository
    commits: list[git_payload.PushedCommit] | None = None
    total_commits: int | None = None  # Gitea/Forgejo only: they cap `commits` far below this


def event_name(delivery: RawDelivery) -> str | None:
    return delivery.header("x-github-event") or delivery.header("x-gitea-event")


def delivery_id(delivery: RawDelivery) -> str | None:
    return delivery.header("x-github-delivery") or delivery.header("x-gitea-delivery")


def verify(delivery: RawDelivery, credentials: Credentials) -> None:
    if delivery.header("x-hub-signature-256"):
        header = "X-Hub-Signature-256"
    elif delivery.header("x-hub-signature"):
        header = "X-Hub-Signature"
    else:
        header = "X-Hub-Signature-256"
    verify_hmac_header(
        delivery, credentials, header=header, hint="set a secret on the GitHub webhook"
    )


def parse(delivery: RawDelivery) -> tuple[Event, ...]:
    event = event_name(delivery) or ""
    did = delivery_id(delivery)
    if event == "ping":
        return (Ignored(source="github", event=event, reason="ping", delivery_id=did),)
    if event not in _PUSH_EVENTS:
        return (Signal(source="github", event=event, delivery_id=did),)
    push = parse_model(_PushEvent, json_document(delivery), what="GitHub push")
    return (to_git_push(push, source="github", event=event, delivery_id=did),)


def to_git_push(push: _PushEvent, *, source: str, event: str, delivery_id: str | None) -> GitPush:
    repo = push.repository
    commits = push.commits or []
    # A new ref has no previous state to diff against, whatever commits are listed.
    complete = (
        not push.forced
        and not git_payload.is_zero_sha(push.before)
        and len(commits) < MAX_LISTED_COMMITS
        and (push.total_commits is None or push.total_commits <= len(commits))
    )
    return GitPush(
        source=source,
        event=event,
        repo_urls=git_payload.present([repo.clone_url, repo.ssh_url, repo.html_url, repo.git_url]),
        ref=push.ref,
        before=push.before,
        after=None if git_payload.is_zero_sha(push.after) else push.after,
        deleted=push.deleted or git_payload.is_zero_sha(push.after),
        default_branch=repo.default_branch,
        changed_paths=git_payload.changed_paths(commits, complete=complete),
        delivery_id=delivery_id,
        repo_name=repo.full_name,
    )


SOURCE = Source(type_name="github", verify=verify, event_name=event_name, parse=parse)
