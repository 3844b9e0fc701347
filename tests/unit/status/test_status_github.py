"""GitHub commit-status requests and replies (receiver/status/github.py)."""

from __future__ import annotations

import json

import pytest

from receiver.errors import ForgeRateLimited, ForgeRejected, ForgeUnavailable
from receiver.status import github
from receiver.status.model import CommitState, PostOutcome, StatusUpdate

SHA = "0123456789abcdef0123456789abcdef01234567"
NOW = 1_700_000_000.0


def update(
    state: CommitState = CommitState.PENDING, description: str = "Reconciliation requested"
) -> StatusUpdate:
    return StatusUpdate(
        forge_host="github.com",
        project="acme/app",
        sha=SHA,
        name="flux/c1/Kustomization/apps/podinfo",
        state=state,
        description=description,
        target_url="https://ui.example/podinfo",
    )


def test_request_path_headers_and_body() -> None:
    request = github.build_request(update(), base_url="https://api.github.com/", token="t0k")
    assert request.method == "POST"
    assert request.url == f"https://api.github.com/repos/acme/app/statuses/{SHA}"
    assert request.headers["Authorization"] == "Bearer t0k"
    assert request.headers["Accept"] == "application/vnd.github+json"
    assert request.headers["X-GitHub-Api-Version"] == "2022-11-28"
    assert json.loads(request.body) == {
        "state": "pending",
        "context": "flux/c1/Kustomization/apps/podinfo",
        "description": "Reconciliation requested",
        "target_url": "https://ui.example/podinfo",
    }


def test_enterprise_base_url_keeps_its_api_prefix() -> None:
    request = github.build_request(update(), base_url="https://ghe.corp/api/v3", token="t")
    assert request.url == f"https://ghe.corp/api/v3/repos/acme/app/statuses/{SHA}"


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        (CommitState.PENDING, "pending"),
        (CommitState.RUNNING, "pending"),
        (CommitState.SUCCESS, "success"),
        (CommitState.FAILURE, "failure"),
        (CommitState.SUPERSEDED, "error"),
    ],
)
def test_state_mapping(state: CommitState, expected: str) -> None:
    body = json.loads(github.build_request(update(state), base_url="https://x", token="t").body)
    assert body["state"] == expected


def test_description_trimmed_to_140() -> None:
    body = json.loads(
        github.build_request(update(description="x" * 500), base_url="https://x", token="t").body
    )
    assert len(body["description"]) == 140
    assert body["description"].endswith("…")


def test_project_must_be_owner_repo() -> None:
    bad = StatusUpdate("github.com", "group/sub/app", SHA, "n", CommitState.PENDING, "d")
    with pytest.raises(ForgeRejected, match="owner/repo"):
        github.build_request(bad, base_url="https://x", token="t")


def decipher(
    status: int, headers: dict[str, str] | None = None, body: bytes = b"{}"
) -> PostOutcome:
    return github.decipher(
        status=status, headers=headers or {}, body=body, state=CommitState.PENDING, now_s=NOW
    )


def test_created() -> None:
    assert decipher(201) is PostOutcome.CREATED


def test_secondary_limit_retry_after() -> None:
    with pytest.raises(ForgeRateLimited) as caught:
        decipher(
            403, {"Retry-After": "30"}, b'{"message":"You have exceeded a secondary rate limit"}'
        )
    assert caught.value.retry_after_s == 30


def test_primary_limit_waits_until_reset() -> None:
    headers = {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(int(NOW) + 120)}
    with pytest.raises(ForgeRateLimited) as caught:
        decipher(403, headers, b'{"message":"API rate limit exceeded"}')
    assert caught.value.retry_after_s == 120


def test_429_without_headers_waits_a_minute() -> None:
    with pytest.raises(ForgeRateLimited) as caught:
        decipher(429)
    assert caught.value.retry_after_s == 60


def test_plain_403_is_a_permission_problem() -> None:
    with pytest.raises(ForgeRejected, match="Resource not accessible"):
        decipher(
            403,
            {"X-RateLimit-Remaining": "4999"},
            b'{"message":"Resource not accessible by integration"}',
        )


@pytest.mark.parametrize("status", [401, 404, 422])
def test_client_errors_are_rejected(status: int) -> None:
    with pytest.raises(ForgeRejected, match=str(status)):
        decipher(status, body=b'{"message":"Bad credentials"}')


@pytest.mark.parametrize("status", [500, 502, 503])
def test_server_errors_are_retried(status: int) -> None:
    with pytest.raises(ForgeUnavailable):
        decipher(status, body=b"<html>oops</html>")
