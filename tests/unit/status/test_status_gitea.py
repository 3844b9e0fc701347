"""Gitea/Forgejo commit-status requests and replies (receiver/status/gitea.py)."""

from __future__ import annotations

import json

import pytest

from receiver.errors import ForgeRateLimited, ForgeRejected, ForgeUnavailable
from receiver.status import gitea
from receiver.status.model import CommitState, PostOutcome, StatusUpdate

SHA = "0123456789abcdef0123456789abcdef01234567"


def test_request() -> None:
    upd = StatusUpdate(
        "git.example",
        "org/app",
        SHA,
        "flux/c/Kustomization/a/b",
        CommitState.SUPERSEDED,
        "Superseded",
    )
    request = gitea.build_request(upd, base_url="https://git.example/api/v1", token="gt")
    assert request.url == f"https://git.example/api/v1/repos/org/app/statuses/{SHA}"
    assert request.headers["Authorization"] == "token gt"
    assert json.loads(request.body) == {
        "state": "warning",
        "context": "flux/c/Kustomization/a/b",
        "description": "Superseded",
    }


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        (CommitState.RUNNING, "pending"),
        (CommitState.FAILURE, "failure"),
        (CommitState.SUCCESS, "success"),
    ],
)
def test_state_mapping(state: CommitState, expected: str) -> None:
    assert gitea.to_forge_state(state) == expected


def decipher(status: int) -> PostOutcome:
    return gitea.decipher(
        status=status, headers={}, body=b"{}", state=CommitState.PENDING, now_s=0.0
    )


def test_replies() -> None:
    assert decipher(201) is PostOutcome.CREATED
    with pytest.raises(ForgeRateLimited):
        decipher(429)
    with pytest.raises(ForgeRejected):
        decipher(404)
    with pytest.raises(ForgeUnavailable):
        decipher(500)
