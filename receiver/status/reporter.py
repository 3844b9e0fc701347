"""Sends commit statuses to the forges, off the webhook path.

Edge: the only aiohttp client code for statuses. `submit` is synchronous and O(1) (amortised)
so the pipeline and the watch never wait on a forge. One worker per forge host sends its
updates in submission order (GitLab needs pending -> running -> success in order for one
name and commit), waits out rate limits, retries 5xx/409/connection errors with capped,
jittered backoff (`backoff.retry`) and gives up on 401/403/404/422. The queue is bounded:
when full, the oldest pending/running update of a superseded commit goes first, then the
oldest of all.
Tokens come from an injected `token_for(host, namespace)`; they never reach a log or metric.

With several replicas only the leader sends. A reporter on `standby` holds the latest update of
each status line instead (bounded, with the time it was decided); `activate` sends the ones
decided within the recovery window with `verify` set, and `standby` puts back on hold what was
still queued. An update with `verify` first reads the commit's statuses from the forge and is
not posted when the forge already shows it (`ForgeApi.already_shows`), so a takeover or a
restart never posts the same state twice for one (object, commit).
"""

from __future__ import annotations

import asyncio
import dataclasses
import heapq
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from random import Random
from typing import Final

import aiohttp
import structlog
import yarl
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge

from receiver import backoff
from receiver.config import StatusLimits
from receiver.errors import ForgeRateLimited, ForgeRejected, ForgeUnavailable
from receiver.status import gitea, github, gitlab
from receiver.status.model import (
    CommitState,
    ForgeApi,
    ForgeConfig,
    ForgeKind,
    ForgeRequest,
    PostOutcome,
    StatusUpdate,
)

log = structlog.get_logger(__name__)

TokenLookup = Callable[[str, str | None], str | None]
StatusKey = tuple[str, str, str, str]

APIS: Final[dict[ForgeKind, ForgeApi]] = {
    ForgeKind.GITHUB: github.API,
    ForgeKind.GITLAB: gitlab.API,
    ForgeKind.GITEA: gitea.API,
}
MAX_REPLY_BYTES: Final = 64 * 1024
_OPEN_STATES: Final = frozenset({CommitState.PENDING, CommitState.RUNNING})


class ReporterMetrics:
    """The reporter's Prometheus series; pass a private registry in tests."""

    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        self.calls = Counter(
            "gitops_receiver_status_calls",
            "Commit-status calls by forge kind and outcome (created, already_set, "
            "already_on_forge, rate_limited, unavailable, rejected).",
            ["forge", "outcome"],
            registry=registry,
        )
        self.dropped = Counter(
            "gitops_receiver_status_dropped",
            "Commit-status updates never posted, by reason (queue_full_superseded, queue_full, "
            "no_token, rejected, retries_exhausted, shutdown, error).",
            ["reason"],
            registry=registry,
        )
        self.held = Gauge(
            "gitops_receiver_status_held",
            "Commit-status updates held by a replica that is not the leader.",
            registry=registry,
        )
        self.queue_depth = Gauge(
            "gitops_receiver_status_queue_depth",
            "Commit-status updates waiting to be sent.",
            registry=registry,
        )


@dataclass(slots=True)
class _Item:
    seq: int
    update: StatusUpdate
    forge: ForgeConfig


class StatusReporter:
    """Bounded, ordered, rate-limit-aware sender of `StatusUpdate`s.

    Lifecycle: `submit` may be called before `start`; `start` opens the HTTP session and one
    worker per forge host; `stop` drains for at most `drain_timeout_s`, then cancels.
    `limits` are the `status.limits` settings. `sleep`, `clock` (epoch seconds) and `random`
    (the retry jitter, floats in [0, 1)) are injected so tests never really wait.
    """

    def __init__(
        self,
        *,
        forges: Iterable[ForgeConfig],
        token_for: TokenLookup,
        metrics: ReporterMetrics,
        limits: StatusLimits | None = None,
        sleep: backoff.Sleep = asyncio.sleep,
        clock: Callable[[], float] = time.time,
        random: Callable[[], float] | None = None,
    ) -> None:
        self._forges = {forge.host.lower(): forge for forge in forges}
        self._token_for = token_for
        self._metrics = metrics
        self._limits = limits or StatusLimits()
        self._sleep = sleep
        self._clock = clock
        self._random = random or Random().random
        self._seq = 0
        self._queues: dict[str, OrderedDict[int, _Item]] = {h: OrderedDict() for h in self._forges}
        self._items: dict[int, _Item] = {}
        self._by_key: dict[StatusKey, set[int]] = {}
        self._superseded_keys: set[StatusKey] = set()
        self._droppable: list[int] = []
        self._last_accepted: OrderedDict[StatusKey, tuple[CommitState, str]] = OrderedDict()
        self._logged_unconfigured: OrderedDict[tuple[str, str], None] = OrderedDict()
        self._warned_no_token: set[tuple[str, str | None]] = set()
        self._wakeups = {host: asyncio.Event() for host in self._forges}
        self._in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._workers: list[asyncio.Task[None]] = []
        self._session: aiohttp.ClientSession | None = None
        self._closing = False
        # Told how each update ended: the forge's answer, or why it was dropped (the inspector).
        self.on_done: Callable[[StatusUpdate, str], None] | None = None
        self.active = True
        self._held: OrderedDict[StatusKey, tuple[float, StatusUpdate]] = OrderedDict()
        self._forge_views: dict[tuple[str, str, str], tuple[float, dict[str, str]]] = {}

    # -- leadership ------------------------------------------------------------------------

    def standby(self) -> None:
        """Hold updates instead of sending them (a follower; or a leader that lost the lease:
        what was queued goes back on hold, to be checked by whoever sends next)."""
        self.active = False
        for seq in list(self._items):
            item = self._take(seq)
            self._forget_accepted(item.update)
            self._hold(item.update)
        if not self._in_flight:
            self._idle.set()

    def activate(self) -> int:
        """Start sending: every held update decided within the recovery window is queued with
        `verify` set; returns how many."""
        self.active = True
        horizon = self._clock() - self._limits.recover_window_s
        held, self._held = self._held, OrderedDict()
        self._metrics.held.set(0)
        recovered = [update for at, update in held.values() if at >= horizon]
        return self.submit_all(dataclasses.replace(update, verify=True) for update in recovered)

    def _hold(self, update: StatusUpdate) -> None:
        key = update.status_key
        self._held[key] = (self._clock(), update)
        self._held.move_to_end(key)
        while len(self._held) > self._limits.dedupe_memory:
            self._held.popitem(last=False)
        self._metrics.held.set(len(self._held))

    # -- the synchronous side --------------------------------------------------------------

    def submit(self, update: StatusUpdate) -> bool:
        """Queue one update; False when it will not be sent (no forge, duplicate, closing)."""
        host = update.forge_host.lower()
        forge = self._forges.get(host)
        if forge is None:
            self._log_unconfigured(host, update.sha)
            return False
        if not self.active:
            self._hold(update)
            return True
        key = update.status_key
        content = (update.state, update.description)
        if self._last_accepted.get(key) == content:
            return False
        if self._closing:
            self._metrics.dropped.labels(reason="shutdown").inc()
            return False
        self._remember(key, content)
        if update.state is CommitState.SUPERSEDED:
            self._superseded_keys.add(key)
            for seq in self._by_key.get(key, ()):
                if self._items[seq].update.state in _OPEN_STATES:
                    heapq.heappush(self._droppable, seq)
        elif update.state is CommitState.PENDING:
            self._superseded_keys.discard(key)
        if len(self._items) >= self._limits.max_queue:
            self._drop_one()
        self._seq += 1
        item = _Item(seq=self._seq, update=update, forge=forge)
        self._queues[host][item.seq] = item
        self._items[item.seq] = item
        self._by_key.setdefault(key, set()).add(item.seq)
        self._metrics.queue_depth.set(len(self._items))
        self._idle.clear()
        self._wakeups[host].set()
        return True

    def submit_all(self, updates: Iterable[StatusUpdate]) -> int:
        return sum(1 for update in updates if self.submit(update))

    @property
    def queued(self) -> int:
        return len(self._items)

    def _drop_one(self) -> None:
        while self._droppable:
            seq = heapq.heappop(self._droppable)
            if seq in self._items:
                self._discard(self._take(seq), reason="queue_full_superseded")
                return
        oldest = min((next(iter(q)) for q in self._queues.values() if q), default=None)
        if oldest is not None:
            self._discard(self._take(oldest), reason="queue_full")

    def _take(self, seq: int) -> _Item:
        item = self._items.pop(seq)
        del self._queues[item.forge.host.lower()][seq]
        key = item.update.status_key
        seqs = self._by_key[key]
        seqs.discard(seq)
        if not seqs:
            del self._by_key[key]
            self._superseded_keys.discard(key)
        self._metrics.queue_depth.set(len(self._items))
        return item

    def _discard(self, item: _Item, *, reason: str) -> None:
        """Count an update that will never be posted, and let an identical one through later."""
        self._metrics.dropped.labels(reason=reason).inc()
        if self.on_done is not None:
            self.on_done(item.update, f"dropped: {reason}")
        self._forget_accepted(item.update)
        log.debug(
            "status_dropped",
            reason=reason,
            forge_host=item.update.forge_host,
            project=item.update.project,
            sha=item.update.sha,
            status_name=item.update.name,
            state=item.update.state.value,
        )

    def _forget_accepted(self, update: StatusUpdate) -> None:
        """Let an identical update through later: this one was never posted."""
        key = update.status_key
        if self._last_accepted.get(key) == (update.state, update.description):
            del self._last_accepted[key]

    def _remember(self, key: StatusKey, content: tuple[CommitState, str]) -> None:
        self._last_accepted[key] = content
        self._last_accepted.move_to_end(key)
        while len(self._last_accepted) > self._limits.dedupe_memory:
            self._last_accepted.popitem(last=False)

    def _log_unconfigured(self, host: str, sha: str) -> None:
        """One debug line per (host, commit), however many objects it triggered."""
        marker = (host, sha)
        if marker in self._logged_unconfigured:
            return
        self._logged_unconfigured[marker] = None
        while len(self._logged_unconfigured) > self._limits.dedupe_memory:
            self._logged_unconfigured.popitem(last=False)
        log.debug("status_forge_not_configured", forge_host=host, sha=sha)

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        timeout = aiohttp.ClientTimeout(total=self._limits.request_timeout_s)
        self._session = aiohttp.ClientSession(timeout=timeout)
        for host in self._forges:
            task = asyncio.create_task(self._run(host), name=f"status-reporter:{host}")
            self._workers.append(task)

    async def wait_idle(self) -> None:
        """Return once nothing is queued or in flight (tests, and the drain in `stop`)."""
        await self._idle.wait()

    async def stop(self, *, drain_timeout_s: float = 5.0) -> None:
        """Stop taking updates, send what is queued for at most `drain_timeout_s`, then cancel;
        what is left is counted as dropped (`shutdown`)."""
        self._closing = True
        for event in self._wakeups.values():
            event.set()
        if self._workers:
            _, pending = await asyncio.wait(self._workers, timeout=drain_timeout_s)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        self._workers.clear()
        for seq in list(self._items):
            self._discard(self._take(seq), reason="shutdown")
        if self._session is not None:
            await self._session.close()
            self._session = None
        self._idle.set()

    # -- the workers -----------------------------------------------------------------------

    async def _run(self, host: str) -> None:
        queue = self._queues[host]
        wakeup = self._wakeups[host]
        while True:
            if not queue:
                if self._closing:
                    return
                wakeup.clear()
                await wakeup.wait()
                continue
            item = self._take(next(iter(queue)))
            self._in_flight += 1
            try:
                await self._deliver(item)
            except asyncio.CancelledError:
                self._discard(item, reason="shutdown")
                raise
            except Exception:
                log.exception("status_delivery_bug", forge_host=host)
                self._discard(item, reason="error")
            finally:
                self._in_flight -= 1
                if not self._items and not self._in_flight:
                    self._idle.set()

    async def _deliver(self, item: _Item) -> None:
        update, forge = item.update, item.forge
        api = APIS[forge.kind]
        token = self._token_for(forge.host, update.namespace)
        missing = (forge.host, update.namespace)
        if not token:
            # One warning while it stays missing; every drop is still counted.
            if missing not in self._warned_no_token:
                self._warned_no_token.add(missing)
                log.warning(
                    "status_token_missing", forge_host=forge.host, namespace=update.namespace
                )
            self._discard(item, reason="no_token")
            return
        self._warned_no_token.discard(missing)
        if update.verify:
            states = await self._forge_view(item, api=api, token=token)
            if states is None:
                return
            if api.already_shows(update, forge_state=states.get(update.name)):
                self._count(forge, "already_on_forge")
                if self.on_done is not None:
                    self.on_done(update, "already_on_forge")
                log.info(
                    "status_already_on_forge",
                    forge_host=forge.host,
                    project=update.project,
                    sha=update.sha,
                    status_name=update.name,
                    state=update.state.value,
                )
                return
        request = api.build_request(update, base_url=forge.api_base_url, token=token)
        answer = await self._call(item, api=api, request=request)
        if answer is None:
            return
        outcome, _ = answer
        view = self._forge_views.get((forge.host, update.project, update.sha))
        if view is not None:
            view[1][update.name] = api.to_forge_state(update.state)
        self._count(forge, outcome.value)
        if self.on_done is not None:
            self.on_done(update, outcome.value)
        log.info(
            "status_posted",
            forge_host=forge.host,
            project=update.project,
            sha=update.sha,
            status_name=update.name,
            state=update.state.value,
            outcome=outcome.value,
        )

    async def _forge_view(self, item: _Item, *, api: ForgeApi, token: str) -> dict[str, str] | None:
        """The commit's statuses as the forge shows them (read at most once per TTL)."""
        update, forge = item.update, item.forge
        key = (forge.host, update.project, update.sha)
        cached = self._forge_views.get(key)
        now = self._clock()
        ttl_s = self._limits.forge_view_ttl_s
        if cached is not None and now - cached[0] < ttl_s:
            return cached[1]
        request = api.build_list_request(
            project=update.project, sha=update.sha, base_url=forge.api_base_url, token=token
        )
        answer = await self._call(item, api=api, request=request)
        if answer is None:
            return None
        states = api.read_states(answer[1])
        self._forge_views = {k: v for k, v in self._forge_views.items() if now - v[0] < ttl_s}
        self._forge_views[key] = (now, states)
        return states

    async def _call(
        self, item: _Item, *, api: ForgeApi, request: ForgeRequest
    ) -> tuple[PostOutcome, bytes] | None:
        """Send `request`: rate limits waited out (their own budget, not a failed attempt),
        5xx/409/connection errors retried with backoff; None once given up (the update is
        then discarded and counted)."""
        update, forge = item.update, item.forge
        limits = self._limits
        waits = 0

        async def call() -> tuple[PostOutcome, bytes]:
            nonlocal waits
            while True:
                try:
                    status, headers, body = await self._send(request)
                    outcome = api.decipher(
                        status=status,
                        headers=headers,
                        body=body,
                        state=update.state,
                        now_s=self._clock(),
                    )
                    return outcome, body
                except ForgeRateLimited as exc:
                    self._count(forge, "rate_limited")
                    waits += 1
                    if waits > limits.max_rate_limit_waits:
                        raise
                    await self._sleep(min(exc.retry_after_s, limits.max_rate_limit_wait_s))

        try:
            return await backoff.retry(
                call,
                policy=limits,
                retryable=lambda exc: isinstance(exc, ForgeUnavailable),
                random=self._random,
                sleep=self._sleep,
                on_retry=lambda _exc, _attempt, _delay_s: self._count(forge, "unavailable"),
            )
        except ForgeRateLimited:
            self._discard(item, reason="retries_exhausted")
        except ForgeUnavailable as exc:
            self._count(forge, "unavailable")
            log.warning("status_forge_unavailable", forge_host=forge.host, error=str(exc))
            self._discard(item, reason="retries_exhausted")
        except ForgeRejected as exc:
            self._count(forge, "rejected")
            log.warning(
                "status_rejected",
                forge_host=forge.host,
                project=update.project,
                sha=update.sha,
                error=str(exc),
            )
            self._discard(item, reason="rejected")
        return None

    async def _send(self, request: ForgeRequest) -> tuple[int, dict[str, str], bytes]:
        """One HTTP call; transport failures become `ForgeUnavailable` (retried)."""
        if self._session is None:
            raise ForgeUnavailable("status reporter is not started")
        try:
            async with self._session.request(
                request.method,
                yarl.URL(request.url, encoded=True),
                headers=dict(request.headers),
                data=request.body,
            ) as response:
                body = await response.content.read(MAX_REPLY_BYTES)
                return response.status, dict(response.headers), body
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise ForgeUnavailable(f"cannot reach the forge: {type(exc).__name__}") from exc

    def _count(self, forge: ForgeConfig, outcome: str) -> None:
        self._metrics.calls.labels(forge=forge.kind.value, outcome=outcome).inc()
