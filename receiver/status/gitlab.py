"""GitLab (gitlab.com and self-managed) commit statuses: build the call, decipher the reply.

`POST {base}/projects/{id}/statuses/{sha}`, base `https://<host>/api/v4`, project by numeric
id or URL-encoded path, with `state` (pending, running, success, failed, canceled), `name`,
`description` (255 characters), `target_url` and `ref`; 201 on success. A status is a state
machine: re-posting the state it holds answers 400 "Cannot transition status via :run from
:running" (for us: already set, not an error); a concurrent update answers 409 (retry).
429 carries `Retry-After` and/or `RateLimit-Reset` (epoch seconds).
Docs: https://docs.gitlab.com/api/commits/#set-the-pipeline-status-of-a-commit
Pure: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Final
from urllib.parse import quote

from receiver.errors import ForgeRejected, ForgeUnavailable
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

DESCRIPTION_LIMIT: Final = 255

_STATES: Final[Mapping[CommitState, str]] = {
    CommitState.PENDING: "pending",
    CommitState.RUNNING: "running",
    CommitState.SUCCESS: "success",
    CommitState.FAILURE: "failed",
    CommitState.SUPERSEDED: "canceled",
}
_CANNOT_TRANSITION: Final = re.compile(r"Cannot transition status via :\w+ from :(\w+)")
_REF_PREFIXES: Final = ("refs/heads/", "refs/tags/")


def to_forge_state(state: CommitState) -> str:
    return _STATES[state]


def status_path(project: str, sha: str) -> str:
    """`/projects/{id}/statuses/{sha}`; a path project is encoded whole (`group%2Fproject`)."""
    if not project:
        raise ForgeRejected("GitLab project id or path is empty")
    return f"/projects/{quote(project, safe='')}/statuses/{quote(sha, safe='')}"


def short_ref(ref: str) -> str:
    """GitLab wants the branch or tag name, not the full ref."""
    for prefix in _REF_PREFIXES:
        if ref.startswith(prefix):
            return ref.removeprefix(prefix)
    return ref


def build_list_request(*, project: str, sha: str, base_url: str, token: str) -> ForgeRequest:
    """`GET /projects/{id}/repository/commits/{sha}/statuses`: the latest status per name."""
    repo_path, _, quoted_sha = status_path(project, sha).rpartition("/statuses/")
    url = f"{base_url.rstrip('/')}{repo_path}/repository/commits/{quoted_sha}/statuses?per_page=100"
    return ForgeRequest.get(url, headers={"Accept": "application/json", "PRIVATE-TOKEN": token})


def read_states(body: bytes) -> dict[str, str]:
    return read_latest_states(body, name_field="name", state_field="status")


def build_request(update: StatusUpdate, *, base_url: str, token: str) -> ForgeRequest:
    payload: dict[str, str] = {
        "state": to_forge_state(update.state),
        "name": update.name,
        "description": trim(update.description, limit=DESCRIPTION_LIMIT),
    }
    if update.target_url:
        payload["target_url"] = update.target_url
    if update.ref:
        payload["ref"] = short_ref(update.ref)
    return ForgeRequest.post_json(
        base_url.rstrip("/") + status_path(update.project, update.sha),
        headers={
            "Accept": "application/json",
            "PRIVATE-TOKEN": token,
        },
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
    """201 is done; a refused transition *from the state we posted* means it is already set."""
    if 200 <= status < 300:
        return PostOutcome.CREATED
    if status == 400:
        text = replies.message(body)
        refused = _CANNOT_TRANSITION.search(text)
        if refused is not None:
            if refused.group(1) == to_forge_state(state):
                return PostOutcome.ALREADY_SET
            raise ForgeRejected(
                f"GitLab refused {to_forge_state(state)!r} on a status that is "
                f"{refused.group(1)!r}: {trim(text, limit=replies.MAX_MESSAGE_CHARS)}"
            )
    if status == 409:
        raise ForgeUnavailable("GitLab answered 409: a concurrent update of the status, retry")
    if status == 429:
        lowered = replies.lower_keys(headers)
        wait_s = replies.retry_after_s(lowered, now_s=now_s)
        if wait_s is None:
            wait_s = replies.reset_in_s(lowered, "ratelimit-reset", now_s=now_s)
        raise replies.rate_limited(
            forge="GitLab", wait_s=replies.DEFAULT_RATE_LIMIT_WAIT_S if wait_s is None else wait_s
        )
    replies.raise_for_common(forge="GitLab", status=status, body=body)
    return PostOutcome.CREATED


API: Final = ForgeApi(
    kind=ForgeKind.GITLAB,
    description_limit=DESCRIPTION_LIMIT,
    build_request=build_request,
    decipher=decipher,
    to_forge_state=to_forge_state,
    build_list_request=build_list_request,
    read_states=read_states,
    final_states=frozenset({"success", "failed", "canceled", "skipped"}),
)
