"""The one backoff helper and the one retry loop (reconcile queue, Receiver status writer, reporter)."""

from __future__ import annotations

import pytest

from receiver import backoff
from receiver.config import ReceiverStatusSettings, StatusLimits, TriggerSettings


class Transient(Exception):
    pass


class Refused(Exception):
    pass


class Flaky:
    """Raises the given errors in turn, then returns "done"; counts its calls."""

    def __init__(self, *errors: Exception) -> None:
        self.errors = list(errors)
        self.calls = 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "done"


class Sleeps:
    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay_s: float) -> None:
        self.delays.append(delay_s)


def transient(exc: Exception) -> bool:
    return isinstance(exc, Transient)


@pytest.mark.parametrize(
    ("attempt", "jitter", "expected"),
    [(1, 0.0, 0.5), (2, 0.0, 1.0), (3, 0.5, 3.0), (4, 0.0, 4.0), (9, 0.0, 5.0), (9, 0.999, 9.995)],
    ids=["first-half", "doubles", "jitter-75%", "doubles-again", "capped", "capped-near-full"],
)
def test_delay_is_capped_exponential_spread_by_jitter(
    attempt: int, jitter: float, expected: float
) -> None:
    assert backoff.delay_s(attempt=attempt, initial_s=1.0, max_s=10.0, jitter=jitter) == (
        pytest.approx(expected)
    )


async def test_retries_transient_errors_then_returns_the_value() -> None:
    call, sleeps, retried = Flaky(Transient("a"), Transient("b")), Sleeps(), []
    policy = TriggerSettings(retry_initial_s=1.0, retry_max_s=10.0, retry_attempts=3)
    result = await backoff.retry(
        call,
        policy=policy,
        retryable=transient,
        random=lambda: 0.0,
        sleep=sleeps,
        on_retry=lambda exc, attempt, delay_s: retried.append((str(exc), attempt, delay_s)),
    )
    assert result == "done" and call.calls == 3
    assert sleeps.delays == [0.5, 1.0]
    assert retried == [("a", 1, 0.5), ("b", 2, 1.0)]


async def test_a_refusal_is_raised_at_once_without_waiting() -> None:
    call, sleeps = Flaky(Refused("no")), Sleeps()
    with pytest.raises(Refused):
        await backoff.retry(
            call, policy=TriggerSettings(), retryable=transient, random=lambda: 0.5, sleep=sleeps
        )
    assert call.calls == 1 and sleeps.delays == []


async def test_the_last_transient_error_is_raised_after_the_last_attempt() -> None:
    call, sleeps = Flaky(*(Transient(str(n)) for n in range(10))), Sleeps()
    policy = ReceiverStatusSettings(retry_initial_s=0.2, retry_max_s=5.0, retry_attempts=5)
    with pytest.raises(Transient, match=r"^4$"):
        await backoff.retry(
            call, policy=policy, retryable=transient, random=lambda: 0.0, sleep=sleeps
        )
    assert call.calls == 5
    assert sleeps.delays == pytest.approx([0.1, 0.2, 0.4, 0.8])


@pytest.mark.parametrize(
    ("asked_s", "expected"), [(None, 0.5), (0.1, 0.5), (4.0, 4.0), (600.0, 10.0)]
)
async def test_a_server_asked_wait_is_a_floor_capped_at_the_max(
    asked_s: float | None, expected: float
) -> None:
    call, sleeps = Flaky(Transient("429")), Sleeps()
    await backoff.retry(
        call,
        policy=TriggerSettings(retry_initial_s=1.0, retry_max_s=10.0, retry_attempts=2),
        retryable=transient,
        random=lambda: 0.0,
        sleep=sleeps,
        retry_after_s=lambda exc: asked_s,
    )
    assert sleeps.delays == [expected]


async def test_status_limits_are_a_retry_policy() -> None:
    call, sleeps = Flaky(Transient("502"), Transient("502")), Sleeps()
    limits = StatusLimits(retry_initial_s=1.0, retry_max_s=1.5, retry_attempts=3)
    await backoff.retry(call, policy=limits, retryable=transient, random=lambda: 0.5, sleep=sleeps)
    assert sleeps.delays == [0.75, 1.125]
