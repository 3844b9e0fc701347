"""The delivery journal: bounded, newest first, filters, and patch outcomes settled per object."""

from __future__ import annotations

from receiver.inspector.journal import (
    Candidate,
    Decision,
    Entry,
    Filter,
    Journal,
    ObjectKey,
    PatchState,
    StatusPost,
    describe_request,
)

FLEET = ObjectKey("GitRepository", "flux-system", "fleet")
APPS = ObjectKey("Kustomization", "flux-system", "apps")


def entry(
    *,
    repo: str = "github.com/org/fleet",
    outcome: str = "accepted",
    status: int = 200,
    source: str = "github",
    commit: str | None = "c" * 40,
    targets: tuple[ObjectKey, ...] = (),
    skipped: tuple[ObjectKey, ...] = (),
) -> Entry:
    candidates = [
        Candidate(key=k, decision=Decision.RECONCILE, reason="match", patch=PatchState.QUEUED)
        for k in targets
    ] + [
        Candidate(key=k, decision=Decision.SKIP, reason="branch dev", cause="ref") for k in skipped
    ]
    return Entry(
        received_at_s=1_700_000_000.0,
        endpoint="/webhooks/github",
        source=source,
        http_status=status,
        outcome=outcome,
        verification="verified" if status != 401 else "failed",
        latency_ms=1.5,
        event="push",
        delivery_id="d-1",
        repository=repo,
        ref="refs/heads/main",
        commit=commit,
        candidates=candidates,
    )


def test_bounded_newest_first_and_get_by_id() -> None:
    journal = Journal(capacity=3)
    added = [journal.add(entry(repo=f"github.com/org/r{i}")) for i in range(5)]
    assert [e.seq for e in added] == [1, 2, 3, 4, 5]
    assert len(journal) == 3
    assert [e.repository for e in journal.entries()] == [
        "github.com/org/r4",
        "github.com/org/r3",
        "github.com/org/r2",
    ]
    assert journal.get(1) is None  # dropped
    assert journal.get(4) is added[3]
    assert journal.get(6) is None


def test_filters_by_repository_outcome_source_and_failed() -> None:
    journal = Journal()
    journal.add(entry(repo="github.com/org/Fleet"))
    journal.add(entry(repo="gitlab.com/g/other", source="gitlab", outcome="unrouted"))
    journal.add(entry(repo="github.com/org/fleet", status=401, outcome="unauthorized"))
    assert len(journal.entries(Filter(repository="org/fleet"))) == 2  # case-insensitive
    assert [e.source for e in journal.entries(Filter(source="gitlab"))] == ["gitlab"]
    assert [e.outcome for e in journal.entries(Filter(outcome="unrouted"))] == ["unrouted"]
    assert [e.outcome for e in journal.entries(Filter(failed=True))] == ["unauthorized"]
    assert journal.outcomes() == ["accepted", "unauthorized", "unrouted"]
    assert journal.sources() == ["github", "gitlab"]


def test_merged_requests_settle_together_and_later_ones_wait_for_the_next_patch() -> None:
    journal = Journal()
    first = journal.add(entry(targets=(FLEET,)))
    second = journal.add(entry(targets=(FLEET,), commit="d" * 40))
    journal.patch_started(FLEET)
    third = journal.add(entry(targets=(FLEET,), commit="e" * 40))  # after the worker took it
    served = journal.patch_finished(FLEET, state=PatchState.PATCHED, attempts=2)
    assert served == [first, second]
    assert first.candidates[0].patch is PatchState.PATCHED
    assert first.candidates[0].attempts == 2
    assert third.candidates[0].patch is PatchState.QUEUED
    journal.patch_started(FLEET)
    assert journal.patch_finished(
        FLEET, state=PatchState.NOT_FOUND, attempts=1, error="HTTP 404"
    ) == [third]
    assert third.failed and not first.failed
    assert third.candidates[0].error == "HTTP 404"


def test_skipped_candidates_never_wait_for_a_patch() -> None:
    journal = Journal()
    skipped = journal.add(entry(skipped=(FLEET,)))
    journal.patch_started(FLEET)
    assert journal.patch_finished(FLEET, state=PatchState.PATCHED, attempts=1) == []
    assert skipped.candidates[0].patch is None


def test_selector_expansion_adds_the_matched_objects_to_the_delivery() -> None:
    journal = Journal()
    selector = ObjectKey("GitRepository", "flux-system", "*[team=a]")
    delivered = journal.add(entry(targets=(selector,)))
    journal.patch_started(selector)
    journal.selector_expanded(selector, matched=[FLEET, APPS])
    assert [str(c.key) for c in delivered.candidates] == [
        "GitRepository/flux-system/*[team=a]",
        "GitRepository/flux-system/fleet",
        "Kustomization/flux-system/apps",
    ]
    assert delivered.candidates[0].patch is PatchState.EXPANDED
    journal.patch_started(APPS)
    assert journal.patch_finished(APPS, state=PatchState.PATCHED, attempts=1) == [delivered]
    assert delivered.candidates[2].patch is PatchState.PATCHED
    assert delivered.candidates[1].patch is PatchState.QUEUED


def test_commit_statuses_join_the_deliveries_of_their_commit() -> None:
    journal = Journal()
    ours = journal.add(entry(commit="a" * 40))
    other = journal.add(entry(commit="b" * 40))
    post = StatusPost(name="kustomization/apps", state="pending", outcome="created")
    journal.status_posted(commit="a" * 40, post=post)
    journal.status_posted(commit="a" * 40, post=post)
    assert ours.statuses == [post]
    assert other.statuses == []


def test_event_message_names_source_repository_ref_and_commit() -> None:
    journal = Journal()
    older = journal.add(entry(commit="1" * 40))
    newer = journal.add(entry(commit="2" * 40))
    message = describe_request([older, newer], reason="webhooks/github")
    assert message == (
        "reconcile requested by github push, repository github.com/org/fleet, "
        f"ref refs/heads/main, commit {'2' * 40}, delivery d-1 (merged with 1 earlier request(s))"
    )
    assert describe_request([], reason="poll").endswith(": poll")
    assert len(describe_request([entry(repo="x" * 5000)], reason="")) == 1000
