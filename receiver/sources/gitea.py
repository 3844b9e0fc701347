"""Gitea and Forgejo webhooks, for the discovery endpoints (Flux serves them via `type: github`).

Verification: `X-Forgejo-Signature`, else `X-Gitea-Signature`: the bare hex HMAC-SHA256 of the
raw body (no `sha256=` prefix); else `X-Hub-Signature-256` (`sha256=<hex>`), which Gitea sends
too. Event: `X-Forgejo-Event` / `X-Gitea-Event`; delivery id: `X-Forgejo-Delivery` /
`X-Gitea-Delivery`. Gitea caps a push's commit list; `total_commits` holds the real count.
Docs: https://docs.gitea.com/features/webhooks, https://forgejo.org/docs/latest/user/webhooks
Pure: no I/O.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

from receiver.errors import AuthenticationFailed
from receiver.events import Event, GitPush, Signal
from receiver.sources import git_payload
from receiver.sources.base import (
    Credentials,
    RawDelivery,
    Source,
    hmac_matches,
    json_document,
    parse_model,
    verify_hmac_header,
)

TYPE_NAME = "gitea"
# Bare-hex signature headers, most specific first: Forgejo sends both of them.
_BARE_HEX_HEADERS = ("X-Forgejo-Signature", "X-Gitea-Signature")
_REF_PREFIXES = {"branch": "refs/heads/", "tag": "refs/tags/"}


class _Repository(BaseModel):
    model_config = ConfigDict(extra="ignore")

    clone_url: str | None = None
    ssh_url: str | None = None
    html_url: str | None = None
    full_name: str | None = None
    default_branch: str | None = None


class _PushPayload(BaseModel):
    model_config = ConfigDict(extra="ignore")

    ref: str
    before: str | None = None
    after: str | None = None
    commits: list[git_payload.PushedCommit] | None = None
    total_commits: int | None = None
    repository: _Repository


class _DeletePayload(BaseModel):
    """`delete` event: `ref` is the short name, `ref_type` is `branch` or `tag`."""

    model_config = ConfigDict(extra="ignore")

    ref: str
    ref_type: Literal["branch", "tag"]
    repository: _Repository


def event_name(delivery: RawDelivery) -> str | None:
    return delivery.header("x-forgejo-event") or delivery.header("x-gitea-event")


def delivery_id(delivery: RawDelivery) -> str | None:
    return delivery.header("x-forgejo-delivery") or delivery.header("x-gitea-delivery")


def verify(delivery: RawDelivery, credentials: Credentials) -> None:
    """Check the first signature header present; a bad one is never rescued by another."""
    for header in _BARE_HEX_HEADERS:
        value = delivery.header(header)
        if value:
            if not hmac_matches(
                key=credentials.token, body=delivery.body, algorithm="sha256", hex_digest=value
            ):
                raise AuthenticationFailed(
                    f"{header} does not match the body: check the webhook secret"
                    " (the header is the bare hex HMAC-SHA256, without a sha256= prefix)"
                )
            return
    verify_hmac_header(
        delivery,
        credentials,
        header="X-Hub-Signature-256",
        hint="set a secret on the Gitea/Forgejo webhook (it then sends X-Gitea-Signature)",
    )


def parse(delivery: RawDelivery) -> tuple[Event, ...]:
    event = event_name(delivery) or ""
    did = delivery_id(delivery)
    if event == "push":
        push = parse_model(_PushPayload, json_document(delivery), what="Gitea push")
        return (_push(push, event=event, delivery_id=did),)
    if event == "delete":
        deletion = parse_model(_DeletePayload, json_document(delivery), what="Gitea delete")
        return (_deletion(deletion, event=event, delivery_id=did),)
    return (Signal(source=TYPE_NAME, event=event, delivery_id=did),)


def _repo_urls(repo: _Repository) -> tuple[str, ...]:
    return git_payload.present([repo.clone_url, repo.ssh_url, repo.html_url])


def _push(push: _PushPayload, *, event: str, delivery_id: str | None) -> GitPush:
    commits = push.commits or []
    complete = (
        push.total_commits is None or push.total_commits <= len(commits)
    ) and not git_payload.is_zero_sha(push.before)
    deleted = git_payload.is_zero_sha(push.after)
    return GitPush(
        source=TYPE_NAME,
        event=event,
        repo_urls=_repo_urls(push.repository),
        ref=push.ref,
        before=push.before,
        after=None if deleted else push.after,
        deleted=deleted,
        default_branch=push.repository.default_branch,
        changed_paths=git_payload.changed_paths(commits, complete=complete),
        delivery_id=delivery_id,
        repo_name=push.repository.full_name,
    )


def _deletion(deletion: _DeletePayload, *, event: str, delivery_id: str | None) -> GitPush:
    ref = deletion.ref
    if not ref.startswith("refs/"):
        ref = _REF_PREFIXES[deletion.ref_type] + ref
    return GitPush(
        source=TYPE_NAME,
        event=event,
        repo_urls=_repo_urls(deletion.repository),
        ref=ref,
        deleted=True,
        default_branch=deletion.repository.default_branch,
        delivery_id=delivery_id,
        repo_name=deletion.repository.full_name,
    )


SOURCE = Source(type_name=TYPE_NAME, verify=verify, event_name=event_name, parse=parse)
