"""Pure coalescing state and time formatting for reconcile requests.

A target waits in the queue at most once: a second request for a target already waiting
collapses into the first (which is never delayed). Once a worker takes a target, a new request
queues it again, because the controller may already have read the previous annotation.
"""

from __future__ import annotations

from collections.abc import Hashable
from datetime import UTC, datetime


class PendingSet:
    def __init__(self) -> None:
        self._waiting: set[Hashable] = set()

    def __len__(self) -> int:
        return len(self._waiting)

    def __contains__(self, target: Hashable) -> bool:
        return target in self._waiting

    def add(self, target: Hashable) -> bool:
        """True when the target is new and must be queued; False when it collapsed."""
        if target in self._waiting:
            return False
        self._waiting.add(target)
        return True

    def take(self, target: Hashable) -> None:
        self._waiting.discard(target)


def requested_at(now_ns: int) -> str:
    """RFC 3339 UTC with nanoseconds, e.g. `2026-11-26T10:55:28.123456789Z`."""
    seconds, nanos = divmod(now_ns, 1_000_000_000)
    stamp = datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{stamp}.{nanos:09d}Z"
