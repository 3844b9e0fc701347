"""Capped exponential backoff with jitter, shared by watches, reconcile retries and forge calls.

Pure: the jitter is an argument, so callers decide where randomness comes from.
"""

from __future__ import annotations


def delay_s(*, attempt: int, initial_s: float, max_s: float, jitter: float) -> float:
    """Delay before retry number `attempt` (1-based); `jitter` in [0, 1) spreads it over
    [50%, 100%] of the capped exponential value, so clients do not retry in step."""
    capped: float = min(max_s, initial_s * 2.0 ** max(0, attempt - 1))
    return capped * (0.5 + jitter / 2)
