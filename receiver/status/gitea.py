"""Gitea and Forgejo commit statuses: build the call, decipher the reply.

`POST {base}/repos/{owner}/{repo}/statuses/{sha}`, base `https://<host>/api/v1`, body
`CreateStatusOption` (`state` pending, success, error, failure, warning; `context`,
`description`, `target_url`); 201 on success; auth `Authorization: token <token>`.
Gitea documents no description limit: we trim to 255 characters like GitLab's.
Docs: https://gitea.com/api/swagger#/repository/repoCreateStatus
Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from receiver.status import github, replies
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

DESCRIPTION_LIMIT: Final = 255

_STATES: Final[Mapping[CommitState, str]] = {
    CommitState.PENDING: "pending",
    CommitState.RUNNING: "pending",
    CommitState.SUCCESS: "success",
    CommitState.FAILURE: "failure",
    # Not a failure of the commit: `warning` keeps the combined status from turning red.
    CommitState.SUPERSEDED: "warning",
}


def to_forge_state(state: CommitState) -> str:
    return _STATES[state]


def _headers(token: str) -> dict[str, str]:
    return {"Accept": "application/json", "Authorization": f"token {token}"}


def build_list_request(*, project: str, sha: str, base_url: str, token: str) -> ForgeRequest:
    """`GET /repos/{owner}/{repo}/commits/{sha}/statuses` (Gitea names the state `status`)."""
    url = base_url.rstrip("/") + github.commit_statuses_path(project, sha) + "?limit=50"
    return ForgeRequest.get(url, headers=_headers(token))


def read_states(body: bytes) -> dict[str, str]:
    return read_latest_states(body, name_field="context", state_field="status")


def build_request(update: StatusUpdate, *, base_url: str, token: str) -> ForgeRequest:
    payload: dict[str, str] = {
        "state": to_forge_state(update.state),
        "context": update.name,
        "description": trim(update.description, limit=DESCRIPTION_LIMIT),
    }
    if update.target_url:
        payload["target_url"] = update.target_url
    # Gitea copies GitHub's path, so GitHub's owner/repo check and encoding apply.
    return ForgeRequest.post_json(
        base_url.rstrip("/") + github.status_path(update.project, update.sha),
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
    del state
    if 200 <= status < 300:
        return PostOutcome.CREATED
    if status == 429:
        wait_s = replies.retry_after_s(replies.lower_keys(headers), now_s=now_s)
        raise replies.rate_limited(
            forge="Gitea", wait_s=replies.DEFAULT_RATE_LIMIT_WAIT_S if wait_s is None else wait_s
        )
    replies.raise_for_common(forge="Gitea", status=status, body=body)
    return PostOutcome.CREATED


API: Final = ForgeApi(
    kind=ForgeKind.GITEA,
    description_limit=DESCRIPTION_LIMIT,
    build_request=build_request,
    decipher=decipher,
    to_forge_state=to_forge_state,
    build_list_request=build_list_request,
    read_states=read_states,
    final_states=frozenset({"success", "failure", "error", "warning"}),
)
