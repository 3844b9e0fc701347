"""GitHub and GitHub Enterprise commit statuses: build the call, decipher the reply.

`POST {base}/repos/{owner}/{repo}/statuses/{sha}` with `state` (error, failure, pending,
success), `context`, `description` (over 140 characters answers 422) and `target_url`;
201 on success. Base URL `https://api.github.com`, or `https://<host>/api/v3` for GHE.
Rate limits: 403/429 with `Retry-After`, or `X-RateLimit-Remaining: 0` + `X-RateLimit-Reset`.
Docs: https://docs.github.com/en/rest/commits/statuses and
https://docs.github.com/en/rest/using-the-rest-api/rate-limits-for-the-rest-api
Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final
from urllib.parse import quote

from receiver.errors import ForgeRejected
from receiver.status import replies
from receiver.status.model import (
    CommitState,
    ForgeApi,
    ForgeKind,
    ForgeRequest,
    PostOutcome,
    StatusUpdate,
    read_latest_states,
    trim,
)

DESCRIPTION_LIMIT: Final = 140
API_VERSION: Final = "2022-11-28"
USER_AGENT: Final = "gitops-receiver"

_STATES: Final[Mapping[CommitState, str]] = {
    CommitState.PENDING: "pending",
    CommitState.RUNNING: "pending",
    CommitState.SUCCESS: "success",
    CommitState.FAILURE: "failure",
    # GitHub has no "canceled": `error` plus the description says it was superseded.
    CommitState.SUPERSEDED: "error",
}


def to_forge_state(state: CommitState) -> str:
    return _STATES[state]


def status_path(project: str, sha: str) -> str:
    """`/repos/{owner}/{repo}/statuses/{sha}`, each segment percent-encoded."""
    owner, sep, repo = project.partition("/")
    if not sep or not owner or not repo or "/" in repo:
        raise ForgeRejected(f"GitHub project must be owner/repo, got {project!r}")
    return f"/repos/{quote(owner, safe='')}/{quote(repo, safe='')}/statuses/{quote(sha, safe='')}"


def _headers(token: str) -> dict[str, str]:
    return {
        "Accept": "application/vnd.github+json",
        "Authorization": f"Bearer {token}",
        "User-Agent": USER_AGENT,
        "X-GitHub-Api-Version": API_VERSION,
    }


def commit_statuses_path(project: str, sha: str) -> str:
    """`/repos/{owner}/{repo}/commits/{sha}/statuses`: the statuses of one commit."""
    repo_path, _, quoted_sha = status_path(project, sha).rpartition("/statuses/")
    return f"{repo_path}/commits/{quoted_sha}/statuses"


def build_list_request(*, project: str, sha: str, base_url: str, token: str) -> ForgeRequest:
    """The commit's statuses, newest first (100 covers every object of a cluster or ten)."""
    url = base_url.rstrip("/") + commit_statuses_path(project, sha) + "?per_page=100"
    return ForgeRequest.get(url, headers=_headers(token))


def read_states(body: bytes) -> dict[str, str]:
    return read_latest_states(body, name_field="context", state_field="state")


def build_request(update: StatusUpdate, *, base_url: str, token: str) -> ForgeRequest:
    payload: dict[str, str] = {
        "state": to_forge_state(update.state),
        "context": update.name,
        "description": trim(update.description, limit=DESCRIPTION_LIMIT),
    }
    if update.target_url:
        payload["target_url"] = update.target_url
    return ForgeRequest.post_json(
        base_url.rstrip("/") + status_path(update.project, update.sha),
        headers=_headers(token),
        payload=payload,
    )


def decipher(
    *,
    status: int,
    headers: Mapping[str, str],
    body: bytes,
    state: CommitState,
    now_s: float,
) -> PostOutcome:
    """201 is done. 403/429 are a rate limit when the headers or the message say so; a plain
    403 is a permission problem. `state` is unused: GitHub accepts any state at any time."""
    del state
    if 200 <= status < 300:
        return PostOutcome.CREATED
    lowered = replies.lower_keys(headers)
    if status in (403, 429):
        wait_s = replies.retry_after_s(lowered, now_s=now_s)
        if wait_s is None and lowered.get("x-ratelimit-remaining") == "0":
            wait_s = replies.reset_in_s(lowered, "x-ratelimit-reset", now_s=now_s)
        if wait_s is None and (status == 429 or "rate limit" in replies.message(body).lower()):
            wait_s = replies.DEFAULT_RATE_LIMIT_WAIT_S
        if wait_s is not None:
            raise replies.rate_limited(forge="GitHub", wait_s=wait_s)
    replies.raise_for_common(forge="GitHub", status=status, body=body)
    return PostOutcome.CREATED


API: Final = ForgeApi(
    kind=ForgeKind.GITHUB,
    description_limit=DESCRIPTION_LIMIT,
    build_request=build_request,
    decipher=decipher,
    to_forge_state=to_forge_state,
    build_list_request=build_list_request,
    read_states=read_states,
    final_states=frozenset({"success", "failure", "error"}),
)
