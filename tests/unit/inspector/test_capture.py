"""What the journal keeps of a pipeline Delivery record: subject, verification, candidates."""

from __future__ import annotations

from receiver.errors import AuthenticationFailed, FilterFailed, ReceiverNotReady
from receiver.events import GitPush, ImagePush, ObjectRef
from receiver.inspector.capture import entry_for
from receiver.inspector.journal import Decision, Entry, PatchState
from receiver.objects.resources import Selector
from receiver.pipeline import DISCOVERY_PATH, RECEIVER_PATH, Delivery, Outcome
from receiver.routing.index import Skip, SkipCause

REPO = ObjectRef("source.toolkit.fluxcd.io/v1", "GitRepository", "flux-system", "fleet")


def capture(record: Delivery, status: int = 200, outcome: str = "accepted") -> Entry:
    return entry_for(
        record, http_status=status, outcome=outcome, latency_ms=1.234, received_at_s=5.0
    )


def test_discovery_push_keeps_targets_queued_and_skips_with_their_cause() -> None:
    push = GitPush(
        source="github",
        event="push",
        repo_urls=("git@github.com:Org/Fleet.git", "https://github.com/Org/Fleet"),
        ref="refs/heads/main",
        after="a" * 40,
        delivery_id="d-1",
    )
    skipped = Skip(
        ObjectRef(REPO.api_version, REPO.kind, REPO.namespace, "dev"),
        SkipCause.REF,
        "branch dev",
    )
    entry = capture(
        Delivery(
            DISCOVERY_PATH,
            endpoint="github",
            source="github",
            event_type="push",
            events=(push,),
            outcome=Outcome.ACCEPTED,
            targets=(REPO,),
            skipped=(skipped,),
        )
    )
    assert (entry.endpoint, entry.verification, entry.delivery_id) == (
        "/webhooks/github",
        "verified",
        "d-1",
    )
    assert (entry.repository, entry.ref, entry.commit) == (
        "github.com/org/fleet",
        "refs/heads/main",
        "a" * 40,
    )
    reconcile, skip = entry.candidates
    assert (str(reconcile.key), reconcile.decision, reconcile.patch) == (
        "GitRepository/flux-system/fleet",
        Decision.RECONCILE,
        PatchState.QUEUED,
    )
    assert (skip.key.name, skip.decision, skip.cause, skip.patch) == (
        "dev",
        Decision.SKIP,
        "ref",
        None,
    )
    assert entry.latency_ms == 1.23


def test_receiver_path_names_the_receiver_and_a_selector_target() -> None:
    selector = Selector("source.toolkit.fluxcd.io/v1", "GitRepository", "apps", (("team", "a"),))
    image = ImagePush(
        source="harbor", event="PUSH_ARTIFACT", repository="reg.io/app", tag="v1", digest="sha256:1"
    )
    entry = capture(
        Delivery(
            RECEIVER_PATH,
            receiver="apps/harbor",
            source="harbor",
            event_type="PUSH_ARTIFACT",
            events=(image,),
            outcome=Outcome.ACCEPTED,
            targets=(selector,),
        )
    )
    assert entry.endpoint == "receiver apps/harbor"
    assert (entry.repository, entry.ref, entry.commit) == ("reg.io/app", "v1", "sha256:1")
    (candidate,) = entry.candidates
    assert candidate.key.name == "*[team=a]"
    assert candidate.reason == "in spec.resources of Receiver apps/harbor"


def test_refused_deliveries_say_how_far_verification_got() -> None:
    forged = capture(
        Delivery(
            DISCOVERY_PATH,
            endpoint="github",
            source="github",
            error=AuthenticationFailed("bad sig"),
        ),
        status=401,
        outcome="unauthorized",
    )
    assert (forged.verification, forged.message, forged.candidates) == ("failed", "bad sig", [])
    not_ready = capture(
        Delivery(
            RECEIVER_PATH, receiver="a/b", source="github", error=ReceiverNotReady("suspended")
        ),
        status=503,
        outcome="not_ready",
    )
    assert not_ready.verification == "not reached"
    # A delivery whose requests the queue refused carries no targets: it shows none.
    full = capture(
        Delivery(DISCOVERY_PATH, endpoint="github", source="github", event_type="push"),
        status=503,
        outcome="unavailable",
    )
    assert full.verification == "verified" and full.candidates == []
    # A Receiver whose CEL filter failed after queueing what it accepted shows those queued.
    failed_filter = capture(
        Delivery(
            RECEIVER_PATH,
            receiver="a/b",
            source="gcr",
            event_type="push",
            targets=(REPO,),
            error=FilterFailed("resource filter failed: x"),
        ),
        status=422,
        outcome="filter_failed",
    )
    assert [(c.key.name, c.patch) for c in failed_filter.candidates] == [
        ("fleet", PatchState.QUEUED)
    ]
    bug = capture(Delivery(RECEIVER_PATH), status=500, outcome="error")
    assert (bug.endpoint, bug.source) == ("receiver (not resolved)", "unknown")
