"""GitLab commit-status requests and replies (receiver/status/gitlab.py)."""

from __future__ import annotations

import json

import pytest

from receiver.errors import ForgeRateLimited, ForgeRejected, ForgeUnavailable
from receiver.status import gitlab
from receiver.status.model import CommitState, PostOutcome, StatusUpdate

SHA = "0123456789abcdef0123456789abcdef01234567"
NOW = 1_700_000_000.0


def update(
    state: CommitState = CommitState.RUNNING,
    *,
    project: str = "group/sub/app",
    description: str = "Flux is reconciling",
    ref: str | None = "refs/heads/main",
) -> StatusUpdate:
    return StatusUpdate(
        "gitlab.example.com",
        project,
        SHA,
        "flux/c1/Kustomization/apps/web",
        state,
        description,
        None,
        ref,
    )


def test_path_project_is_encoded_whole() -> None:
    request = gitlab.build_request(
        update(), base_url="https://gitlab.example.com/api/v4", token="glpat"
    )
    assert (
        request.url
        == f"https://gitlab.example.com/api/v4/projects/group%2Fsub%2Fapp/statuses/{SHA}"
    )
    assert request.headers["PRIVATE-TOKEN"] == "glpat"
    assert "Authorization" not in request.headers


def test_numeric_project_id() -> None:
    request = gitlab.build_request(update(project="4242"), base_url="https://g/api/v4", token="t")
    assert request.url == f"https://g/api/v4/projects/4242/statuses/{SHA}"


def test_body_uses_name_and_short_ref_and_no_missing_link() -> None:
    body = json.loads(gitlab.build_request(update(), base_url="https://g", token="t").body)
    assert body == {
        "state": "running",
        "name": "flux/c1/Kustomization/apps/web",
        "description": "Flux is reconciling",
        "ref": "main",
    }


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        (CommitState.PENDING, "pending"),
        (CommitState.RUNNING, "running"),
        (CommitState.SUCCESS, "success"),
        (CommitState.FAILURE, "failed"),
        (CommitState.SUPERSEDED, "canceled"),
    ],
)
def test_state_mapping(state: CommitState, expected: str) -> None:
    assert gitlab.to_forge_state(state) == expected


def test_description_trimmed_to_255() -> None:
    body = json.loads(
        gitlab.build_request(update(description="y" * 1000), base_url="https://g", token="t").body
    )
    assert len(body["description"]) == 255


def decipher(
    status: int,
    *,
    state: CommitState = CommitState.RUNNING,
    headers: dict[str, str] | None = None,
    body: bytes = b"{}",
) -> PostOutcome:
    return gitlab.decipher(status=status, headers=headers or {}, body=body, state=state, now_s=NOW)


REFUSED_RUN = json.dumps(
    {
        "message": "Cannot transition status via :run from :running"
        ' (Reason(s): Status cannot transition via "run")'
    }
).encode()


def test_created() -> None:
    assert decipher(201) is PostOutcome.CREATED


def test_reposting_the_current_state_is_already_set() -> None:
    assert decipher(400, body=REFUSED_RUN) is PostOutcome.ALREADY_SET


def test_refused_transition_to_another_state_is_rejected() -> None:
    body = b'{"message":"Cannot transition status via :enqueue from :running"}'
    with pytest.raises(ForgeRejected, match="'pending' on a status that is 'running'"):
        decipher(400, state=CommitState.PENDING, body=body)


def test_other_400_is_rejected() -> None:
    with pytest.raises(ForgeRejected, match="target_url"):
        decipher(400, body=b'{"message":{"target_url":["is blocked"]}}')


def test_409_concurrent_update_is_retried() -> None:
    with pytest.raises(ForgeUnavailable, match="409"):
        decipher(409)


def test_429_retry_after() -> None:
    with pytest.raises(ForgeRateLimited) as caught:
        decipher(429, headers={"Retry-After": "7", "RateLimit-Reset": str(int(NOW) + 60)})
    assert caught.value.retry_after_s == 7


def test_429_ratelimit_reset_when_no_retry_after() -> None:
    with pytest.raises(ForgeRateLimited) as caught:
        decipher(429, headers={"RateLimit-Reset": str(int(NOW) + 45)})
    assert caught.value.retry_after_s == 45


@pytest.mark.parametrize("status", [401, 403, 404, 422])
def test_client_errors_are_rejected(status: int) -> None:
    with pytest.raises(ForgeRejected):
        decipher(status, body=b'{"message":"401 Unauthorized"}')


def test_5xx_is_unavailable() -> None:
    with pytest.raises(ForgeUnavailable, match="502"):
        decipher(502, body=b"Bad Gateway")
