"""Capped exponential backoff with jitter, and the one retry loop built on it.

`delay_s` spaces the retries of the reconcile queue, the Receiver status writer and the status
reporter (all through `retry`), and the reconnects of the watches and the poller's failing
remotes. It is pure: the jitter is an argument. `retry` awaits the call and the sleep it is
given, so tests pass a recording sleep and never wait.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol, TypeVar

_T = TypeVar("_T")
Sleep = Callable[[float], Awaitable[None]]


class RetryPolicy(Protocol):
    """What a settings model that retries a call names: `TriggerSettings`, `StatusLimits`…"""

    @property
    def retry_initial_s(self) -> float: ...

    @property
    def retry_max_s(self) -> float: ...

    @property
    def retry_attempts(self) -> int: ...


def delay_s(*, attempt: int, initial_s: float, max_s: float, jitter: float) -> float:
    """Delay before retry number `attempt` (1-based); `jitter` in [0, 1) spreads it over
    [50%, 100%] of the capped exponential value, so clients do not retry in step."""
    capped: float = min(max_s, initial_s * 2.0 ** max(0, attempt - 1))
    return capped * (0.5 + jitter / 2)


async def retry(
    call: Callable[[], Awaitable[_T]],
    *,
    policy: RetryPolicy,
    retryable: Callable[[Exception], bool],
    random: Callable[[], float],
    sleep: Sleep,
    retry_after_s: Callable[[Exception], float | None] | None = None,
    on_retry: Callable[[Exception, int, float], None] | None = None,
) -> _T:
    """`call()`, again after a backoff delay while it raises a `retryable` error, at most
    `policy.retry_attempts` times in all. Returns its result; raises a non-retryable error at
    once and a retryable one after the last attempt, for the caller to log and count.

    `retry_after_s(error)` is how long the server asked to wait (a 429's Retry-After), if it
    did: the delay is at least that, capped at `retry_max_s`. `on_retry(error, attempt,
    delay_s)` runs before each wait (log, count).
    """
    attempt = 0
    while True:
        attempt += 1
        try:
            return await call()
        except Exception as exc:
            if not retryable(exc) or attempt >= policy.retry_attempts:
                raise
            delay = delay_s(
                attempt=attempt,
                initial_s=policy.retry_initial_s,
                max_s=policy.retry_max_s,
                jitter=random(),
            )
            asked_s = retry_after_s(exc) if retry_after_s is not None else None
            if asked_s is not None:
                delay = max(delay, min(asked_s, policy.retry_max_s))
            if on_retry is not None:
                on_retry(exc, attempt, delay)
            await sleep(delay)
