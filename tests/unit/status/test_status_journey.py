"""The commit journey state machine (receiver/status/journey.py)."""

from __future__ import annotations

from receiver.events import ObjectRef
from receiver.status import flux
from receiver.status.journey import REQUESTED_DESCRIPTION, Journey
from receiver.status.model import CommitState, ForgeTarget, StatusNaming, StatusUpdate

SHA_A = "a" * 40
SHA_B = "b" * 40
TARGET = ForgeTarget("gitlab.example.com", "group/app")
KS = ObjectRef("kustomize.toolkit.fluxcd.io/v1", "Kustomization", "apps", "web")
HR = ObjectRef("helm.toolkit.fluxcd.io/v2", "HelmRelease", "apps", "api")
NAMING = StatusNaming(cluster="c1", target_url_template="https://ui/{kind}/{name}/{sha}")


def observation(
    state: CommitState,
    sha: str | None,
    *,
    applied: str | None = None,
    description: str = "msg",
    obj: ObjectRef = KS,
) -> flux.Observation:
    return flux.Observation(
        obj=obj,
        state=state,
        revision=flux.Revision(sha) if sha else None,
        applied=flux.Revision(applied) if applied else None,
        description=description,
    )


def states(updates: list[StatusUpdate]) -> list[tuple[str, CommitState]]:
    return [(u.sha[:1], u.state) for u in updates]


def test_push_posts_pending_for_each_downstream_object() -> None:
    journey = Journey(naming=NAMING)
    updates = journey.requested(
        sha=SHA_A.upper(), ref="refs/heads/main", target=TARGET, objects=[KS, HR]
    )
    assert [u.name for u in updates] == [
        "flux/c1/Kustomization/apps/web",
        "flux/c1/HelmRelease/apps/api",
    ]
    first = updates[0]
    assert (first.forge_host, first.project, first.sha) == (TARGET.host, TARGET.project, SHA_A)
    assert (first.state, first.description) == (CommitState.PENDING, REQUESTED_DESCRIPTION)
    assert first.target_url == f"https://ui/Kustomization/web/{SHA_A}"
    assert (first.ref, first.namespace) == ("refs/heads/main", "apps")


def test_full_sequence_pending_running_success() -> None:
    journey = Journey(naming=NAMING)
    posted = journey.requested(sha=SHA_A, target=TARGET, objects=[KS])
    posted += journey.observed(observation(CommitState.RUNNING, SHA_A, description="Reconciling"))
    posted += journey.observed(
        observation(CommitState.SUCCESS, SHA_A, applied=SHA_A, description="Applied")
    )
    assert states(posted) == [
        ("a", CommitState.PENDING),
        ("a", CommitState.RUNNING),
        ("a", CommitState.SUCCESS),
    ]
    assert journey.open_commits(KS) == []


def test_nothing_is_posted_twice_and_periodic_reconciles_stay_silent() -> None:
    journey = Journey(naming=NAMING)
    journey.requested(sha=SHA_A, target=TARGET, objects=[KS])
    assert journey.requested(sha=SHA_A, target=TARGET, objects=[KS]) == [], "still pending"
    journey.observed(observation(CommitState.RUNNING, SHA_A))
    assert journey.observed(observation(CommitState.RUNNING, SHA_A, description="other")) == []
    journey.observed(observation(CommitState.SUCCESS, SHA_A, applied=SHA_A))
    assert journey.observed(observation(CommitState.SUCCESS, SHA_A, applied=SHA_A)) == []
    # The next interval reconciles the same commit: no flip back to running.
    assert journey.observed(observation(CommitState.RUNNING, SHA_A, applied=SHA_A)) == []


def test_failure_then_success_after_a_fix_elsewhere() -> None:
    journey = Journey(naming=NAMING)
    journey.requested(sha=SHA_A, target=TARGET, objects=[KS])
    failed = journey.observed(
        observation(CommitState.FAILURE, SHA_A, description="health check failed")
    )
    assert [(u.state, u.description) for u in failed] == [
        (CommitState.FAILURE, "health check failed")
    ]
    assert journey.observed(observation(CommitState.RUNNING, SHA_A)) == [], "retries stay quiet"
    ok = journey.observed(observation(CommitState.SUCCESS, SHA_A, applied=SHA_A))
    assert states(ok) == [("a", CommitState.SUCCESS)]


def test_newer_applied_commit_supersedes_older_open_ones() -> None:
    journey = Journey(naming=NAMING)
    journey.requested(sha=SHA_A, target=TARGET, objects=[KS])
    journey.requested(sha=SHA_B, target=TARGET, objects=[KS])
    updates = journey.observed(observation(CommitState.SUCCESS, SHA_B, applied=SHA_B))
    assert states(updates) == [("b", CommitState.SUCCESS), ("a", CommitState.SUPERSEDED)]
    assert updates[1].description == "Superseded: Flux applied a newer revision (bbbbbbbb)"


def test_a_push_after_the_applied_commit_is_not_superseded() -> None:
    journey = Journey(naming=NAMING)
    journey.requested(sha=SHA_A, target=TARGET, objects=[KS])
    journey.requested(sha=SHA_B, target=TARGET, objects=[KS])
    # Flux finishes A before its source has fetched B: B stays pending.
    updates = journey.observed(observation(CommitState.SUCCESS, SHA_A, applied=SHA_A))
    assert states(updates) == [("a", CommitState.SUCCESS)]
    assert journey.open_commits(KS) == [SHA_B]


def test_unannounced_applied_commit_supersedes_what_came_before() -> None:
    journey = Journey(naming=NAMING)
    journey.requested(sha=SHA_A, target=TARGET, objects=[KS])
    other = "c" * 40
    journey.source_moved(objects=[KS], revision=flux.Revision(other))
    journey.requested(sha=SHA_B, target=TARGET, objects=[KS])
    updates = journey.observed(observation(CommitState.SUCCESS, other, applied=other))
    assert states(updates) == [("a", CommitState.SUPERSEDED)], "C was seen before B's push"


def test_helm_abbreviated_sha_resolves_to_the_pushed_commit() -> None:
    journey = Journey(naming=NAMING)
    journey.requested(sha=SHA_A, target=TARGET, objects=[HR])
    updates = journey.observed(
        observation(CommitState.SUCCESS, SHA_A[:12], applied=SHA_A[:12], obj=HR)
    )
    assert [(u.sha, u.state) for u in updates] == [(SHA_A, CommitState.SUCCESS)]


def test_untracked_commits_get_no_status() -> None:
    journey = Journey(naming=NAMING)
    assert journey.observed(observation(CommitState.SUCCESS, SHA_A, applied=SHA_A)) == []


def test_redelivered_push_after_success_starts_again() -> None:
    journey = Journey(naming=NAMING)
    journey.requested(sha=SHA_A, target=TARGET, objects=[KS])
    journey.observed(observation(CommitState.SUCCESS, SHA_A, applied=SHA_A))
    again = journey.requested(sha=SHA_A, target=TARGET, objects=[KS])
    assert states(again) == [("a", CommitState.PENDING)]


def test_memory_is_bounded_per_object_and_overall() -> None:
    journey = Journey(naming=NAMING, max_objects=2, max_commits_per_object=3)
    for index in range(10):
        journey.requested(sha=f"{index:040x}", target=TARGET, objects=[KS])
    assert len(journey.open_commits(KS)) == 3
    for name in ("x", "y", "z"):
        journey.requested(
            sha=SHA_A, target=TARGET, objects=[ObjectRef("v", "Kustomization", "n", name)]
        )
    assert journey.open_commits(KS) == [], "the least recently used object was evicted"


SHA_C = "c" * 40


def test_a_late_webhook_for_the_parent_is_ordered_by_the_childs_before() -> None:
    """B's webhook first, then A's (B.before == A): applying B supersedes A."""
    journey = Journey(naming=NAMING)
    journey.requested(sha=SHA_B, before=SHA_A, target=TARGET, objects=[KS])
    journey.requested(sha=SHA_A, before=SHA_C, target=TARGET, objects=[KS])
    posted = journey.observed(observation(CommitState.SUCCESS, SHA_B, applied=SHA_B))
    assert states(posted) == [("b", CommitState.SUCCESS), ("a", CommitState.SUPERSEDED)]
    assert journey.open_commits(KS) == []


def test_a_webhook_for_a_parent_of_the_applied_commit_is_superseded_at_once() -> None:
    journey = Journey(naming=NAMING)
    journey.requested(sha=SHA_B, before=SHA_A, target=TARGET, objects=[KS])
    journey.observed(observation(CommitState.SUCCESS, SHA_B, applied=SHA_B))
    posted = journey.requested(sha=SHA_A, before=SHA_C, target=TARGET, objects=[KS])
    assert states(posted) == [("a", CommitState.PENDING), ("a", CommitState.SUPERSEDED)]


def test_without_before_arrival_order_stands() -> None:
    journey = Journey(naming=NAMING)
    journey.requested(sha=SHA_B, target=TARGET, objects=[KS])
    journey.requested(sha=SHA_A, target=TARGET, objects=[KS])
    posted = journey.observed(observation(CommitState.SUCCESS, SHA_B, applied=SHA_B))
    assert states(posted) == [("b", CommitState.SUCCESS)]
    assert journey.open_commits(KS) == [SHA_A]
