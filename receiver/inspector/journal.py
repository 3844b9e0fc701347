"""A bounded in-memory record of recent deliveries: what arrived, what was decided, what happened.

Answers "why did my push not deploy?": for each delivery the verification outcome, every
candidate object with its decision (reconcile, or skip and why), each reconcile patch's outcome
(with attempts) as the reconcile queue reports it, and the commit statuses posted for its commit.
Objects are generic (kind/namespace/name), so any kind the queue patches shows the same way.

Pure: no I/O, no clock (times are arguments). The oldest entry is dropped past `capacity`.
Nothing secret is stored: a Receiver is named by namespace/name, never by its webhook path,
and no header, signature, token or body is kept.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum

DEFAULT_CAPACITY = 1_000


class Decision(StrEnum):
    RECONCILE = "reconcile"
    SKIP = "skip"


class PatchState(StrEnum):
    """Where a candidate's reconcile request stands, as the reconcile queue reports it."""

    QUEUED = "queued"  # accepted, not yet taken by a worker (or held by min_interval_s)
    PATCHED = "patched"
    EXPANDED = "expanded"  # a label selector, replaced by the objects it matched
    NOT_FOUND = "not_found"
    REJECTED = "rejected"
    FAILED = "failed"  # still failing after the last attempt


FAILED_PATCH_STATES = frozenset({PatchState.NOT_FOUND, PatchState.REJECTED, PatchState.FAILED})


@dataclass(frozen=True, slots=True, order=True)
class ObjectKey:
    """Any Kubernetes object by kind, namespace and name (a selector's name is `*[labels]`)."""

    kind: str
    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.kind}/{self.namespace}/{self.name}"


@dataclass(slots=True)
class Candidate:
    """One object the delivery could have reconciled, and what became of it."""

    key: ObjectKey
    decision: Decision
    reason: str
    cause: str | None = None  # for a skip: ref, path, suspended, refused...
    patch: PatchState | None = None  # None for a skip
    attempts: int = 0
    error: str | None = None


@dataclass(frozen=True, slots=True)
class StatusPost:
    """A commit status sent back to the forge for the delivery's commit."""

    name: str
    state: str
    outcome: str  # the forge's answer: created, unchanged, rejected...


@dataclass(slots=True)
class Entry:
    """One delivery. Filled by the pipeline at answer time; patches and statuses arrive later."""

    received_at_s: float  # wall clock
    endpoint: str  # "receiver flux-system/github" or "/webhooks/github": never a secret path
    source: str
    http_status: int
    outcome: str
    verification: str  # "verified", "failed", "not reached"
    latency_ms: float
    event: str | None = None
    delivery_id: str | None = None
    repository: str | None = None
    ref: str | None = None
    commit: str | None = None
    message: str | None = None  # the error or the reason given in the answer
    candidates: list[Candidate] = field(default_factory=list)
    statuses: list[StatusPost] = field(default_factory=list)
    seq: int = 0  # set by Journal.add

    @property
    def failed(self) -> bool:
        """Refused, or a reconcile request that did not land."""
        return self.http_status >= 400 or any(
            c.patch in FAILED_PATCH_STATES for c in self.candidates
        )


@dataclass(frozen=True, slots=True)
class Filter:
    """What the list view shows: every field None/False means everything."""

    repository: str | None = None  # substring, case-insensitive
    outcome: str | None = None  # exact
    source: str | None = None  # exact
    failed: bool = False

    def matches(self, entry: Entry) -> bool:
        if self.failed and not entry.failed:
            return False
        if self.outcome and entry.outcome != self.outcome:
            return False
        if self.source and entry.source != self.source:
            return False
        return not self.repository or self.repository.lower() in (entry.repository or "").lower()


_Waiter = tuple[Entry, Candidate]


class Journal:
    """The last `capacity` deliveries, and the candidates still waiting for their patch.

    A target requested by several deliveries before a worker takes it is one patch (the queue
    merges them): `patch_started` moves every waiting candidate of that object in flight, and
    `patch_finished` settles them all, so each delivery shows the patch that served it.
    """

    def __init__(self, *, capacity: int = DEFAULT_CAPACITY) -> None:
        self.capacity = capacity
        self._entries: deque[Entry] = deque(maxlen=capacity)
        self._next_seq = 1
        self._waiting: dict[ObjectKey, list[_Waiter]] = {}
        self._in_flight: dict[ObjectKey, list[_Waiter]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def add(self, entry: Entry) -> Entry:
        entry.seq = self._next_seq
        self._next_seq += 1
        self._entries.append(entry)
        for candidate in entry.candidates:
            if candidate.decision is Decision.RECONCILE and candidate.patch is PatchState.QUEUED:
                self._waiting.setdefault(candidate.key, []).append((entry, candidate))
        return entry

    def entries(self, selection: Filter = Filter()) -> list[Entry]:
        """Matching entries, newest first."""
        return [entry for entry in reversed(self._entries) if selection.matches(entry)]

    def get(self, seq: int) -> Entry | None:
        if not self._entries or seq < self._entries[0].seq:
            return None
        index = seq - self._entries[0].seq
        return self._entries[index] if index < len(self._entries) else None

    def outcomes(self) -> list[str]:
        return sorted({entry.outcome for entry in self._entries})

    def sources(self) -> list[str]:
        return sorted({entry.source for entry in self._entries})

    # -- what the reconcile queue reports ------------------------------------------------------

    def patch_started(self, key: ObjectKey) -> None:
        """A worker took `key`: the candidates waiting for it are served by this patch."""
        waiters = self._waiting.pop(key, None)
        if waiters:
            self._in_flight.setdefault(key, []).extend(waiters)

    def patch_finished(
        self, key: ObjectKey, *, state: PatchState, attempts: int, error: str | None = None
    ) -> list[Entry]:
        """Settle the in-flight candidates of `key`; returns their deliveries, oldest first."""
        served: list[Entry] = []
        for entry, candidate in self._in_flight.pop(key, ()):
            candidate.patch = state
            candidate.attempts = attempts
            candidate.error = error
            if entry not in served:
                served.append(entry)
        return served

    def selector_expanded(self, key: ObjectKey, *, matched: Iterable[ObjectKey]) -> None:
        """A label selector became objects: each joins the deliveries that asked for it."""
        found = list(matched)
        for entry, candidate in self._in_flight.pop(key, ()):
            candidate.patch = PatchState.EXPANDED
            candidate.attempts = 1
            candidate.reason = f"{candidate.reason}; matched {len(found)} object(s)"
            for ref in found:
                added = Candidate(
                    key=ref,
                    decision=Decision.RECONCILE,
                    reason=f"matched {candidate.key.name}",
                    patch=PatchState.QUEUED,
                )
                entry.candidates.append(added)
                self._waiting.setdefault(ref, []).append((entry, added))

    def status_posted(self, *, commit: str, post: StatusPost) -> None:
        """A commit status went out for `commit`: shown on the deliveries of that commit."""
        for entry in reversed(self._entries):
            if entry.commit == commit and post not in entry.statuses:
                entry.statuses.append(post)


# An Event message is at most 1 kB in events.k8s.io/v1; kept under that for both APIs.
MAX_MESSAGE_CHARS = 1000


def describe_request(served: list[Entry], *, reason: str) -> str:
    """The Kubernetes Event message for one reconcile patch: which delivery asked for it.

    Names the newest delivery's source, repository, ref and commit; merged requests are
    counted. Without a delivery (the poller, a shutdown release) it gives the queue's reason.
    """
    if not served:
        return f"reconcile requested by gitops-receiver: {reason}"[:MAX_MESSAGE_CHARS]
    newest = served[-1]
    parts = [f"{newest.source} {newest.event or 'delivery'}"]
    if newest.repository:
        parts.append(f"repository {newest.repository}")
    if newest.ref:
        parts.append(f"ref {newest.ref}")
    if newest.commit:
        parts.append(f"commit {newest.commit}")
    if newest.delivery_id:
        parts.append(f"delivery {newest.delivery_id}")
    message = "reconcile requested by " + ", ".join(parts)
    if len(served) > 1:
        message += f" (merged with {len(served) - 1} earlier request(s))"
    return message[:MAX_MESSAGE_CHARS]
