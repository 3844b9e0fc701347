"""Forget-after-a-window memory of delivery ids, so a redelivered webhook is not applied twice.

Pure: the monotonic time is an argument. Bounded: at most `max_entries` ids are kept; the
oldest are forgotten first.
"""

from __future__ import annotations

from collections import OrderedDict


class DeliveryDeduper:
    def __init__(self, *, window_s: float, max_entries: int = 100_000) -> None:
        self._window_s = window_s
        self._max_entries = max_entries
        self._seen: OrderedDict[tuple[str, str], float] = OrderedDict()

    def seen_before(self, *, scope: str, delivery_id: str | None, now_s: float) -> bool:
        """Record the id; True when the same id reached the same scope within the window."""
        if delivery_id is None or self._window_s <= 0:
            return False
        while self._seen:
            oldest_key, oldest_at = next(iter(self._seen.items()))
            if now_s - oldest_at <= self._window_s and len(self._seen) < self._max_entries:
                break
            del self._seen[oldest_key]
        key = (scope, delivery_id)
        if key in self._seen:
            return True
        self._seen[key] = now_s
        return False

    def forget(self, *, scope: str, delivery_id: str | None) -> None:
        """Drop an id recorded by `seen_before`: its delivery was refused after all (queue
        full), so the sender's retry must be taken, not answered as a duplicate."""
        if delivery_id is not None:
            self._seen.pop((scope, delivery_id), None)
