"""The reconcile queue: accept targets without waiting, apply them with a pool of workers.

`request_all` is synchronous and O(1) per target, so the webhook answer never waits on the API
server. Duplicates of a target still waiting collapse (`PendingSet`). A target patched less than
`min_interval_s` ago is held until that interval has passed, collecting every request made
meanwhile: a burst of pushes to one repository costs at most one patch per interval, and the
first request after a quiet spell is never delayed. Once Flux reports it handled the
target's last patch (`handled`: its `status.lastHandledReconcileAt`), a held request goes at
once: a push right after an applied one does not wait out the interval.
A worker patches one target at a time,
retrying 429/5xx/connection errors with capped, jittered backoff; a missing target is logged and
counted once; a target that still fails after the last attempt is logged and counted as failed,
never dropped silently. Selectors (`name: '*'`) are expanded by a worker.
An optional `PatchObserver` (the delivery inspector) hears when a worker takes a target, how its
patch ended (with attempts) and what a selector matched.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

import structlog

from receiver import backoff
from receiver.config import TriggerSettings
from receiver.errors import (
    KubeError,
    KubeRejected,
    KubeUnavailable,
    QueueDraining,
    QueueFull,
    TargetNotFound,
)
from receiver.events import ObjectRef
from receiver.kube.patching import Cluster
from receiver.metrics import Metrics
from receiver.objects.resources import Selector
from receiver.trigger.pending import PendingSet, requested_at

log = structlog.get_logger(__name__)

Target = ObjectRef | Selector
_T = TypeVar("_T")
# Below this many remembered patch times, none are forgotten.
_PRUNE_FLOOR = 10_000
# How a patch (or a selector's list) ended, as metrics and the observer name it.
PATCHED = "patched"
NOT_FOUND = "not_found"
REJECTED = "rejected"
FAILED = "failed"


@dataclass(frozen=True, slots=True)
class Attempted(Generic[_T]):
    """The end of a call with retries: `outcome` PATCHED (success) or a failure outcome."""

    outcome: str
    attempts: int
    value: _T | None = None
    error: str | None = None


class PatchObserver(Protocol):
    """Told what the workers do, in order, from the event loop (must not block or raise)."""

    def patch_started(self, target: Target) -> None: ...

    def patch_finished(
        self, target: ObjectRef, *, result: Attempted[str | None], reason: str
    ) -> None: ...

    def selector_expanded(
        self, selector: Selector, *, result: Attempted[list[ObjectRef]]
    ) -> None: ...


class ReconcileQueue:
    def __init__(
        self,
        *,
        cluster: Cluster,
        settings: TriggerSettings,
        metrics: Metrics,
        clock_ns: Callable[[], int] = time.time_ns,
        monotonic: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
        sleep: backoff.Sleep = asyncio.sleep,
        observer: PatchObserver | None = None,
    ) -> None:
        self._cluster = cluster
        self.observer = observer
        self._settings = settings
        self._metrics = metrics
        self._clock_ns = clock_ns
        self._rng = rng or random.Random()
        self._sleep = sleep
        self._queue: asyncio.Queue[tuple[Target, str]] = asyncio.Queue()
        self._pending = PendingSet()
        self._workers: list[asyncio.Task[None]] = []
        self._accepting = True
        self._last_requested_ns: dict[ObjectRef, int] = {}
        self._monotonic = monotonic
        self._last_taken_s: dict[Target, float] = {}
        self._prune_taken_at = _PRUNE_FLOOR
        self._held: dict[Target, tuple[asyncio.TimerHandle, str]] = {}
        self._last_stamps: dict[Target, str] = {}
        self._nothing_held = asyncio.Event()
        self._nothing_held.set()
        self._notes: dict[ObjectRef, dict[str, str]] = {}

    @property
    def depth(self) -> int:
        """Requests waiting: queued for a worker, or held until their interval has passed."""
        return self._queue.qsize() + len(self._held)

    def last_requested_ns(self, target: ObjectRef) -> int | None:
        """When a reconcile of `target` was last accepted with `remember` (wall clock, ns),
        for the poller."""
        return self._last_requested_ns.get(target)

    def request_all(self, targets: Iterable[Target], *, reason: str, remember: bool = True) -> int:
        """Queue every target or none; returns how many were new (not collapsed).

        `remember=False` keeps the request out of `last_requested_ns`: the poller's own
        requests must not make it skip the same object when the remote moves again.
        Raises `QueueDraining` when shutting down and `QueueFull` when the queue has no room,
        so the sender is told to retry instead of the request being lost.
        """
        if not self._accepting:
            raise QueueDraining("shutting down: not accepting reconcile requests")
        unique = list(dict.fromkeys(targets))
        fresh = [target for target in unique if target not in self._pending]
        if self.depth + len(fresh) > self._settings.queue_size:
            raise QueueFull("reconcile queue is full: retry later")
        now = self._clock_ns()
        for target in unique:
            if remember and isinstance(target, ObjectRef):
                self._last_requested_ns[target] = now
            if self._pending.add(target):
                self._enqueue(target, reason)
            else:
                self._metrics.reconcile_requests.labels(target.kind, "collapsed").inc()
        self._metrics.queue_depth.set(self.depth)
        return len(fresh)

    def note(self, target: ObjectRef, annotations: Mapping[str, str]) -> None:
        """Annotations to set with `target`'s next reconcile patch (the latest value of each
        wins when requests collapse). Call right after `request_all` for that target."""
        self._notes.setdefault(target, {}).update(annotations)

    def _enqueue(self, target: Target, reason: str) -> None:
        """Queue now, or hold until `min_interval_s` after the target's last patch began."""
        last = self._last_taken_s.get(target)
        wait_s = 0.0 if last is None else last + self._settings.min_interval_s - self._monotonic()
        if wait_s <= 0:
            self._queue.put_nowait((target, reason))
            return
        loop = asyncio.get_running_loop()
        self._held[target] = (loop.call_later(wait_s, self._release, target, reason), reason)
        self._nothing_held.clear()

    def handled(self, target: ObjectRef, *, requested_at: str) -> None:
        """Flux handled a reconcile request of `target` (the object's
        `status.lastHandledReconcileAt`). When it is this queue's last patch, the interval has
        done its work: a request held behind that patch is queued now."""
        if self._last_stamps.get(target) != requested_at:
            return
        del self._last_stamps[target]
        self._last_taken_s.pop(target, None)
        held = self._held.pop(target, None)
        if held is not None:
            handle, reason = held
            handle.cancel()
            self._queue.put_nowait((target, reason))
            if not self._held:
                self._nothing_held.set()

    def _prune_taken(self, now_s: float) -> None:
        """Forget patch times older than the interval (they can no longer hold anything);
        amortised: runs again only once the table has doubled."""
        horizon = now_s - self._settings.min_interval_s
        self._last_taken_s = {t: at for t, at in self._last_taken_s.items() if at > horizon}
        self._last_stamps = {t: v for t, v in self._last_stamps.items() if t in self._last_taken_s}
        self._prune_taken_at = max(_PRUNE_FLOOR, 2 * len(self._last_taken_s))

    def _release(self, target: Target, reason: str) -> None:
        if self._held.pop(target, None) is not None:
            self._queue.put_nowait((target, reason))
        if not self._held:
            self._nothing_held.set()

    def _release_all(self) -> None:
        for target, (handle, _) in list(self._held.items()):
            handle.cancel()
            self._held.pop(target)
            self._queue.put_nowait((target, "released at shutdown"))
        self._nothing_held.set()

    def start(self) -> None:
        for index in range(self._settings.workers):
            self._workers.append(
                asyncio.create_task(self._work(), name=f"reconcile-worker-{index}")
            )

    async def settle(self) -> None:
        """Wait until every request, held ones included, has been applied (or given up)."""
        await self._nothing_held.wait()
        await self._queue.join()

    async def drain(self) -> None:
        """Stop accepting, wait (bounded) for the queue to empty, then stop the workers."""
        self._accepting = False
        self._release_all()
        try:
            await asyncio.wait_for(self._queue.join(), timeout=self._settings.drain_timeout_s)
        except TimeoutError:
            left = self._queue.qsize()
            log.error("reconcile_queue_abandoned", left=left)
            self._metrics.reconcile_requests.labels("*", "abandoned").inc(left)
        for task in self._workers:
            task.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)
        self._workers.clear()

    async def _work(self) -> None:
        while True:
            target, reason = await self._queue.get()
            self._pending.take(target)
            if self.observer is not None:
                self.observer.patch_started(target)
            self._last_taken_s[target] = now_s = self._monotonic()
            if len(self._last_taken_s) > self._prune_taken_at:
                self._prune_taken(now_s)
            self._metrics.queue_depth.set(self.depth)
            try:
                if isinstance(target, Selector):
                    await self._expand(target, reason)
                else:
                    await self._patch(target, reason)
            finally:
                self._queue.task_done()

    async def _expand(self, selector: Selector, reason: str) -> None:
        result = await self._with_retries(selector, lambda: self._cluster.select(selector))
        if self.observer is not None:
            self.observer.selector_expanded(selector, result=result)
        refs = result.value
        if result.outcome != PATCHED or refs is None:
            return
        if not refs:
            log.info("selector_matched_nothing", selector=str(selector))
        for ref in refs:
            if self._pending.add(ref):
                self._enqueue(ref, reason)
                self._last_requested_ns[ref] = self._clock_ns()

    async def _patch(self, target: ObjectRef, reason: str) -> None:
        started = time.perf_counter()
        stamp = requested_at(self._clock_ns())
        notes = self._notes.pop(target, None)
        result = await self._with_retries(
            target,
            lambda: self._cluster.request_reconcile(target, requested_at=stamp, annotations=notes),
        )
        if self.observer is not None:
            self.observer.patch_finished(target, result=result, reason=reason)
        if result.outcome != PATCHED:
            return
        if target in self._last_taken_s:
            self._last_stamps[target] = stamp
        self._metrics.patch_latency.labels(target.kind).observe(time.perf_counter() - started)
        self._metrics.reconcile_requests.labels(target.kind, PATCHED).inc()
        log.info("reconcile_requested", target=str(target), reason=reason, requested_at=stamp)

    async def _with_retries(
        self, target: Target, call: Callable[[], Awaitable[_T]]
    ) -> Attempted[_T]:
        """The call's value once it succeeds, or the failure once it is logged and counted."""
        retried = 0

        def retrying(exc: Exception, attempt: int, _delay_s: float) -> None:
            nonlocal retried
            retried = attempt
            self._metrics.patch_retries.labels(target.kind).inc()
            log.warning("reconcile_retrying", target=str(target), attempt=attempt, error=str(exc))

        try:
            value = await backoff.retry(
                call,
                policy=self._settings,
                retryable=_transient,
                random=self._rng.random,
                sleep=self._sleep,
                retry_after_s=_retry_after_s,
                on_retry=retrying,
            )
        except TargetNotFound as exc:
            self._metrics.reconcile_requests.labels(target.kind, NOT_FOUND).inc()
            log.warning("reconcile_target_not_found", target=str(target))
            return Attempted(NOT_FOUND, retried + 1, error=str(exc))
        except KubeRejected as exc:
            self._metrics.reconcile_requests.labels(target.kind, REJECTED).inc()
            log.error("reconcile_rejected", target=str(target), error=str(exc))
            return Attempted(REJECTED, retried + 1, error=str(exc))
        except KubeError as exc:
            self._metrics.reconcile_requests.labels(target.kind, FAILED).inc()
            log.error("reconcile_failed", target=str(target), attempts=retried + 1, error=str(exc))
            return Attempted(FAILED, retried + 1, error=str(exc))
        return Attempted(PATCHED, retried + 1, value)


def _transient(exc: Exception) -> bool:
    """Worth another try: the API server failed (429/5xx/connection); it did not refuse."""
    return isinstance(exc, KubeError) and not isinstance(exc, (TargetNotFound, KubeRejected))


def _retry_after_s(exc: Exception) -> float | None:
    return exc.retry_after_s if isinstance(exc, KubeUnavailable) else None
