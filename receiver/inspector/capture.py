"""What the journal keeps of one delivery, taken from the pipeline's `Delivery` record.

Pure: the record, the HTTP status and outcome the edge answered, the latency and the arrival
time in; a journal `Entry` out. Candidates are generic objects (kind/namespace/name): the
record's targets (the record carries only queued ones) and the objects routing or a
Receiver's CEL filters left alone, with why. A Receiver is named by namespace/name, never by
its secret webhook path.
"""

from __future__ import annotations

from receiver.errors import AuthenticationFailed
from receiver.events import Event, GitPush, ImagePush
from receiver.inspector.journal import Candidate, Decision, Entry, ObjectKey, PatchState
from receiver.inspector.tracker import object_key
from receiver.pipeline import RECEIVER_PATH, Delivery
from receiver.routing.urls import normalize_git_url


def _subject(events: tuple[Event, ...]) -> tuple[str | None, str | None, str | None]:
    """(repository, ref, commit) of the first push the delivery carries."""
    for event in events:
        if isinstance(event, GitPush):
            # Routing normalised these URLs already: each is a cache hit.
            urls = (normalize_git_url(url) for url in event.repo_urls)
            repository = next((u for u in urls if u), None) or event.repo_name
            if repository is None and event.repo_urls:
                repository = event.repo_urls[0]
            return repository, event.ref, None if event.deleted else event.after
        if isinstance(event, ImagePush):
            return event.repository, event.tag, event.digest
    return None, None, None


def _endpoint(record: Delivery) -> str:
    if record.receiver is not None:
        return f"receiver {record.receiver}"
    if record.endpoint is not None:
        return f"/webhooks/{record.endpoint}"
    return f"{record.path_kind} (not resolved)"


def _verification(record: Delivery) -> str:
    if isinstance(record.error, AuthenticationFailed):
        return "failed"
    return "verified" if record.event_type is not None else "not reached"


def entry_for(
    record: Delivery, *, http_status: int, outcome: str, latency_ms: float, received_at_s: float
) -> Entry:
    """The journal entry of one answered delivery (refused ones too)."""
    repository, ref, commit = _subject(record.events)
    if record.path_kind == RECEIVER_PATH:
        why = f"in spec.resources of Receiver {record.receiver}"
    else:
        why = "matched by discovery routing (or it reads a matched source)"
    # The record carries targets only once they were queued (a failed CEL filter too: what
    # the filters accepted is requested, then the delivery fails).
    candidates: list[Candidate] = []
    if record.targets:
        candidates.extend(
            Candidate(
                key=object_key(target),
                decision=Decision.RECONCILE,
                reason=why,
                patch=PatchState.QUEUED,
            )
            for target in record.targets
        )
    for skip in record.skipped or ():
        candidates.append(
            Candidate(
                key=ObjectKey(skip.ref.kind, skip.ref.namespace, skip.ref.name),
                decision=Decision.SKIP,
                reason=skip.reason,
                cause=skip.cause.value,
            )
        )
    return Entry(
        received_at_s=received_at_s,
        endpoint=_endpoint(record),
        source=record.source or "unknown",
        http_status=http_status,
        outcome=outcome,
        verification=_verification(record),
        latency_ms=round(latency_ms, 2),
        event=record.event_type,
        delivery_id=record.delivery_id,
        repository=repository,
        ref=ref,
        commit=commit,
        message=str(record.error) if record.error is not None else record.reason,
        candidates=candidates,
    )
