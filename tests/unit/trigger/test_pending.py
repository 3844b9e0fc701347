"""Coalescing state, requestedAt formatting and the shared backoff."""

from __future__ import annotations

import re

from receiver import backoff
from receiver.trigger.pending import PendingSet, requested_at


def test_second_request_collapses_until_taken() -> None:
    pending = PendingSet()
    assert pending.add("a") is True
    assert pending.add("a") is False
    assert "a" in pending and len(pending) == 1
    pending.take("a")
    assert pending.add("a") is True


def test_requested_at_is_rfc3339_utc_with_nanoseconds() -> None:
    assert requested_at(1_795_690_528_123_456_789) == "2026-11-26T10:55:28.123456789Z"
    assert requested_at(5) == "1970-01-01T00:00:00.000000005Z"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z", requested_at(10**18))


def test_backoff_is_capped_and_jittered_within_half_to_full() -> None:
    delays = [backoff.delay_s(attempt=n, initial_s=0.5, max_s=4, jitter=0.0) for n in range(1, 7)]
    assert delays == [0.25, 0.5, 1.0, 2.0, 2.0, 2.0]
    assert backoff.delay_s(attempt=10, initial_s=0.5, max_s=4, jitter=0.999999) < 4.0
