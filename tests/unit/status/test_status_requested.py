"""The requested-commit annotation, the forges' status listings, and when a recovered update
is already on the forge."""

from __future__ import annotations

import json

import pytest

from receiver.events import ObjectRef
from receiver.status import flux, gitea, github, gitlab, requested
from receiver.status.journey import Journey
from receiver.status.model import (
    CommitState,
    ForgeApi,
    ForgeTarget,
    StatusNaming,
    StatusUpdate,
)

TARGET = ForgeTarget(host="gitlab.example.com", project="group/fleet")
SHA = "ab" * 20
RECORD = requested.RequestedCommit(
    sha=SHA, ref="refs/heads/main", target=TARGET, request_id="delivery-1", at_s=1_700_000_000.5
)
KS = ObjectRef("kustomize.toolkit.fluxcd.io/v1", "Kustomization", "apps", "web")


def test_the_record_round_trips_through_the_annotation() -> None:
    value = requested.encode(RECORD)
    assert requested.decode(value) == RECORD
    obj = {"metadata": {"annotations": {requested.ANNOTATION: value}}}
    assert requested.read(obj) == RECORD


@pytest.mark.parametrize(
    "value",
    [
        "",
        "not json",
        "[]",
        json.dumps({"sha": SHA}),
        json.dumps({"sha": SHA, "host": "h", "project": "p", "id": "i", "at": "soon"}),
        json.dumps({"sha": SHA, "host": "h", "project": "p", "id": "i", "at": True}),
        json.dumps({"sha": SHA, "host": "h", "project": "p", "id": "", "at": 1}),
        json.dumps({"sha": SHA, "ref": 7, "host": "h", "project": "p", "id": "i", "at": 1}),
        "x" * (requested.MAX_VALUE_CHARS + 1),
    ],
)
def test_anything_else_in_the_annotation_is_ignored(value: str) -> None:
    assert requested.decode(value) is None


def test_objects_without_the_annotation_have_no_record() -> None:
    assert requested.read({}) is None
    assert requested.read({"metadata": {"annotations": None}}) is None
    assert requested.read({"metadata": {"annotations": {requested.ANNOTATION: 5}}}) is None


@pytest.mark.parametrize(
    ("api", "body", "expected"),
    [
        (
            github.API,  # newest first
            [
                {"id": 9, "context": "flux/a", "state": "success"},
                {"id": 3, "context": "flux/a", "state": "pending"},
                {"id": 4, "context": "flux/b", "state": "pending"},
            ],
            {"flux/a": "success", "flux/b": "pending"},
        ),
        (
            gitlab.API,
            [{"id": 1, "name": "flux/a", "status": "running"}, {"name": 5, "status": "x"}],
            {"flux/a": "running"},
        ),
        (
            gitea.API,  # oldest first: the highest id wins
            [
                {"id": 1, "context": "flux/a", "status": "pending"},
                {"id": 2, "context": "flux/a", "status": "warning"},
            ],
            {"flux/a": "warning"},
        ),
    ],
)
def test_each_forge_listing_reads_as_the_latest_state_per_name(
    api: ForgeApi, body: list[dict[str, object]], expected: dict[str, str]
) -> None:
    assert api.read_states(json.dumps(body).encode()) == expected
    assert api.read_states(b"{not json") == {}
    assert api.read_states(b'{"message": "Not Found"}') == {}


def test_list_requests_name_the_commit_and_carry_the_token() -> None:
    hub = github.build_list_request(
        project="acme/app", sha=SHA, base_url="https://api.github.com", token="t1"
    )
    assert hub.method == "GET"
    assert hub.url == f"https://api.github.com/repos/acme/app/commits/{SHA}/statuses?per_page=100"
    assert hub.headers["Authorization"] == "Bearer t1"
    lab = gitlab.build_list_request(
        project="group/sub/app", sha=SHA, base_url="https://gl.example/api/v4", token="t2"
    )
    assert lab.url == (
        "https://gl.example/api/v4/projects/group%2Fsub%2Fapp/repository/commits/"
        f"{SHA}/statuses?per_page=100"
    )
    assert lab.headers["PRIVATE-TOKEN"] == "t2"
    tea = gitea.build_list_request(
        project="o/r", sha=SHA, base_url="https://tea.example/api/v1", token="t3"
    )
    assert tea.url == f"https://tea.example/api/v1/repos/o/r/commits/{SHA}/statuses?limit=50"
    assert tea.headers["Authorization"] == "token t3"


def _update(state: CommitState) -> StatusUpdate:
    return StatusUpdate(
        forge_host="h", project="p", sha=SHA, name="n", state=state, description="d"
    )


@pytest.mark.parametrize(
    ("api", "state", "on_forge", "shown"),
    [
        (gitlab.API, CommitState.PENDING, None, False),
        (gitlab.API, CommitState.PENDING, "pending", True),
        (gitlab.API, CommitState.RUNNING, "pending", False),
        (gitlab.API, CommitState.PENDING, "success", True),  # never reopen a settled line
        (gitlab.API, CommitState.SUCCESS, "running", False),
        (gitlab.API, CommitState.SUCCESS, "success", True),
        (gitlab.API, CommitState.SUPERSEDED, "canceled", True),
        (gitlab.API, CommitState.FAILURE, "success", False),  # a final state is still posted
        (github.API, CommitState.RUNNING, "pending", True),  # GitHub says pending for both
        (github.API, CommitState.SUPERSEDED, "error", True),
        (gitea.API, CommitState.SUPERSEDED, "warning", True),
        (gitea.API, CommitState.RUNNING, "warning", True),
    ],
)
def test_already_shows(
    api: ForgeApi, state: CommitState, on_forge: str | None, shown: bool
) -> None:
    assert api.already_shows(_update(state), forge_state=on_forge) is shown


def test_the_journey_learns_a_request_once_whichever_way_it_arrives() -> None:
    journey = Journey(naming=StatusNaming(cluster="c"))
    first = journey.requested(sha=SHA, target=TARGET, objects=[KS], request_id="delivery-1")
    assert [u.state for u in first] == [CommitState.PENDING]
    # The same request again (the annotation its patch left, seen by the watch): nothing.
    assert journey.requested(sha=SHA, target=TARGET, objects=[KS], request_id="delivery-1") == []
    # ... even once the commit is settled.
    assert [u.state for u in journey.observed(_observation(state=CommitState.SUCCESS))] == [
        CommitState.SUCCESS
    ]
    assert journey.requested(sha=SHA, target=TARGET, objects=[KS], request_id="delivery-1") == []
    # A new request of the same commit (a later push of a revert) starts a new journey.
    again = journey.requested(sha=SHA, target=TARGET, objects=[KS], request_id="delivery-2")
    assert [u.state for u in again] == [CommitState.PENDING]


def _observation(*, state: CommitState) -> flux.Observation:
    return flux.Observation(
        obj=KS,
        state=state,
        revision=flux.Revision(SHA),
        applied=flux.Revision(SHA),
        description="Applied",
    )
