"""The poller's schedule: one `git ls-remote` per remote per tick, reconcile what moved.

Edge: runs git (GitPython in a bounded thread pool, or any `LsRemote`), reads Secrets
through an injected reader, and asks for reconciles through the injected queue callbacks with
`reason="poll"`. Concurrency is capped globally and per host; every call has a timeout; a
failing remote backs off exponentially without delaying the others. Leader election is not
here: the `enabled` flag decides whether `run` polls at all. Never logs a secret or stderr.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import subprocess
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Protocol

import git
import structlog
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram

from receiver import backoff
from receiver.config import PollSettings
from receiver.errors import (
    CredentialsInvalid,
    LsRemoteMalformed,
    ReceiverError,
    RemoteAuthFailed,
    RemoteError,
    RemoteNotFound,
    RemoteTimeout,
    RemoteUnreachable,
    UnsupportedUrl,
)
from receiver.events import ObjectRef
from receiver.poller import credentials, refs

log = structlog.get_logger(__name__)

REASON = "poll"
LS_REMOTE_ARGS = ("ls-remote", "--symref", "--")
# Extra time the event loop waits beyond the git timeout before giving up on a worker thread.
TIMEOUT_GRACE_S = 5.0


# stderr fragments (LC_ALL=C) -> failure class; the text itself is never logged.
_STDERR_CLASSES: tuple[tuple[str, type[RemoteError]], ...] = (
    ("authentication failed", RemoteAuthFailed),
    ("could not read username", RemoteAuthFailed),
    ("could not read password", RemoteAuthFailed),
    ("terminal prompts disabled", RemoteAuthFailed),
    ("permission denied", RemoteAuthFailed),
    ("host key verification failed", RemoteAuthFailed),
    ("the requested url returned error: 401", RemoteAuthFailed),
    ("the requested url returned error: 403", RemoteAuthFailed),
    ("not found", RemoteNotFound),
    ("does not appear to be a git repository", RemoteNotFound),
    ("could not resolve host", RemoteUnreachable),
    ("connection refused", RemoteUnreachable),
    ("unable to connect", RemoteUnreachable),
    ("connection timed out", RemoteUnreachable),
    ("could not read from remote repository", RemoteUnreachable),
)


class LsRemote(Protocol):
    """Lists a remote's refs: `git ls-remote --symref -- <url>` with `env` added; returns stdout."""

    async def __call__(self, *, url: str, env: Mapping[str, str], timeout_s: float) -> str: ...


class RequestReconcile(Protocol):
    """The reconcile queue's entry point (the same one webhooks use).

    May return anything, or an awaitable that is awaited; a `ReceiverError` it raises (queue
    full, draining) is logged for that object and the tick goes on.
    """

    def __call__(self, ref: ObjectRef, *, reason: str) -> object: ...


class RecentlyRequested(Protocol):
    """True when a reconcile of `ref` was requested (by anyone) within the last `within_s`."""

    def __call__(self, ref: ObjectRef, within_s: float) -> bool: ...


ListRecords = Callable[[], Iterable[refs.PollRecord]]
AnnounceMove = Callable[[refs.PollRecord, refs.Resolved], None]
"""Told of each remote move the poller asked a reconcile for (commit statuses: pending)."""
ReadSecret = Callable[[str, str], Awaitable[Mapping[str, bytes] | None]]


@dataclass(slots=True)
class _Backoff:
    failures: int = 0
    retry_at_s: float = 0.0


@dataclass(frozen=True, slots=True)
class TickReport:
    """What one tick did; `requested` lists the objects a reconcile was asked for."""

    remotes_polled: int = 0
    remotes_backing_off: int = 0
    requested: tuple[ObjectRef, ...] = ()
    failed: tuple[ObjectRef, ...] = ()
    outcomes: Mapping[str, int] = field(default_factory=dict)


class PollerMetrics:
    """The poller's Prometheus series; pass a private registry in tests."""

    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        self.polls = Counter(
            "gitops_receiver_polls",
            "git ls-remote calls by outcome.",
            ["outcome"],
            registry=registry,
        )
        self.duration = Histogram(
            "gitops_receiver_poll_duration_seconds",
            "Duration of one git ls-remote call, credentials included.",
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
            registry=registry,
        )
        self.reconciles = Counter(
            "gitops_receiver_poll_reconciles",
            "Reconciles requested by the poller: each one is a push whose webhook did not arrive.",
            registry=registry,
        )
        self.remotes = Gauge(
            "gitops_receiver_poll_remotes",
            "Distinct remotes (URL and credential) polled in the last tick.",
            registry=registry,
        )


class GitPythonLsRemote:
    """`git ls-remote` (GitPython's configured git executable) in a thread pool of
    `max_threads`, with a clean environment: the service's own without any git/curl variable,
    plus `env` (`credentials.child_environment`). GitPython's `execute` always merges the
    whole `os.environ`, where an inherited `GIT_SSL_CAINFO` would beat the Secret's `ca.crt`
    and `GIT_CURL_VERBOSE` would trace, so the child is started with `subprocess` here.
    """

    def __init__(self, *, max_threads: int) -> None:
        self._pool = ThreadPoolExecutor(max_workers=max_threads, thread_name_prefix="ls-remote")

    async def __call__(self, *, url: str, env: Mapping[str, str], timeout_s: float) -> str:
        loop = asyncio.get_running_loop()
        call = loop.run_in_executor(self._pool, self._run, url, dict(env), timeout_s)
        try:
            return await asyncio.wait_for(call, timeout_s + TIMEOUT_GRACE_S)
        except TimeoutError as exc:
            raise RemoteTimeout("git ls-remote did not finish in time") from exc

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    @staticmethod
    def _run(url: str, env: dict[str, str], timeout_s: float) -> str:
        try:
            done = subprocess.run(
                [git.Git.GIT_PYTHON_GIT_EXECUTABLE or "git", *LS_REMOTE_ARGS, url],
                env=credentials.child_environment(inherited=os.environ, added=env),
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=timeout_s,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise RemoteTimeout("git ls-remote did not finish in time") from exc
        if done.returncode != 0:
            raise classify_failure(
                status=done.returncode, stderr=done.stderr.decode(errors="replace")
            )
        return done.stdout.decode(errors="replace")


def classify_failure(*, status: int, stderr: str) -> RemoteError:
    """A `RemoteError` subclass from git's exit status and (C locale) stderr, text not kept."""
    lowered = stderr.lower()
    for fragment, error in _STDERR_CLASSES:
        if fragment in lowered:
            return error(f"git ls-remote failed ({error.outcome}, exit {status})")
    return RemoteError(f"git ls-remote failed (exit {status})")


class Poller:
    """Polls every GitRepository's remote once per `tick`; `run` ticks every jittered interval.

    Collaborators are injected: `list_records` returns the current records (the discovery
    index), `read_secret(namespace, name)` the decoded Secret data or None, and the reconcile
    queue's `request_reconcile`/`recently_requested`; `announce_move` (optional) hears of each
    move it reconciled, for commit statuses. `random` returns floats in [0, 1) and
    `clock` monotonic seconds, so tests drive ticks and backoff without sleeping.
    Backoff is kept per (remote, credential): the objects sharing a failing call fail and wait
    together, each named in its own `poll_failed` log line; a success clears it.
    """

    def __init__(
        self,
        *,
        settings: PollSettings,
        list_records: ListRecords,
        read_secret: ReadSecret,
        request_reconcile: RequestReconcile,
        recently_requested: RecentlyRequested,
        ls_remote: LsRemote,
        metrics: PollerMetrics,
        random: Callable[[], float],
        announce_move: AnnounceMove | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._settings = settings
        self._announce_move = announce_move
        self._list_records = list_records
        self._read_secret = read_secret
        self._request_reconcile = request_reconcile
        self._recently_requested = recently_requested
        self._ls_remote = ls_remote
        self._metrics = metrics
        self._random = random
        self._clock = clock
        self._sleep = sleep
        self._global = asyncio.Semaphore(settings.concurrency)
        self._hosts: dict[str, asyncio.Semaphore] = {}
        self._backoff: dict[refs.RemoteKey, _Backoff] = {}

    @property
    def settings(self) -> PollSettings:
        return self._settings

    def next_delay_s(self) -> float:
        """The pause before the next tick: the interval +/- `jitter_fraction` of it."""
        spread = self._settings.jitter_fraction * (2 * self._random() - 1)
        return max(self._settings.interval_s * (1 + spread), 0.0)

    async def run(self) -> None:
        """Tick, sleep a jittered interval, repeat until cancelled. Returns at once if disabled."""
        if not self._settings.enabled:
            log.info("poller_disabled")
            return
        log.info(
            "poller_started",
            interval_s=self._settings.interval_s,
            concurrency=self._settings.concurrency,
        )
        while True:
            try:
                await self.tick()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # The type only: a rendered traceback's locals could hold Secret data.
                log.error("poll_tick_crashed", error=type(exc).__name__)
            await self._sleep(self.next_delay_s())

    async def tick(self) -> TickReport:
        """Poll every due remote once, concurrently, and request reconciles for what moved."""
        groups = self._groups(self._list_records())
        now = self._clock()
        due = [g for g in groups if self._backoff.get(g.key, _Backoff()).retry_at_s <= now]
        self._backoff = {g.key: self._backoff[g.key] for g in groups if g.key in self._backoff}
        self._metrics.remotes.set(len(due))
        results = await asyncio.gather(*(self._poll_group(group) for group in due))
        outcomes: dict[str, int] = {}
        requested: list[ObjectRef] = []
        failed: list[ObjectRef] = []
        for group, (outcome, asked) in zip(due, results, strict=True):
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
            requested.extend(asked)
            if outcome != "ok":
                failed.extend(record.ref for record in group.records)
        return TickReport(
            remotes_polled=len(due),
            remotes_backing_off=len(groups) - len(due),
            requested=tuple(requested),
            failed=tuple(failed),
            outcomes=outcomes,
        )

    def _groups(self, records: Iterable[refs.PollRecord]) -> list[refs.RemoteGroup]:
        pollable: list[refs.PollRecord] = []
        for record in records:
            if not refs.wants_poll(record) or not refs.needs_remote(record.spec_ref):
                continue
            try:
                refs.remote_url(record.url)
            except UnsupportedUrl as exc:
                log.warning("poll_skipped", object=str(record.ref), reason=str(exc))
                continue
            pollable.append(record)
        return refs.group_by_remote(pollable)

    async def _poll_group(self, group: refs.RemoteGroup) -> tuple[str, list[ObjectRef]]:
        host_limit = self._hosts.setdefault(
            group.host, asyncio.Semaphore(self._settings.per_host_limit)
        )
        async with host_limit, self._global:
            started = self._clock()
            try:
                remote = await self._list_remote(group)
            except (RemoteError, CredentialsInvalid, LsRemoteMalformed) as exc:
                outcome = exc.outcome if isinstance(exc, RemoteError) else _outcome_of(exc)
                self._metrics.polls.labels(outcome=outcome).inc()
                self._record_failure(group, outcome=outcome, message=str(exc))
                return outcome, []
            except OSError as exc:
                # git missing, no temp space, fork refused: this remote fails, the tick goes on.
                # Only the type is logged: a traceback's locals could hold the credentials.
                self._metrics.polls.labels(outcome="error").inc()
                self._record_failure(group, outcome="error", message=type(exc).__name__)
                return "error", []
            finally:
                self._metrics.duration.observe(max(self._clock() - started, 0.0))
        self._metrics.polls.labels(outcome="ok").inc()
        self._backoff.pop(group.key, None)
        return "ok", await self._compare(group, remote)

    async def _list_remote(self, group: refs.RemoteGroup) -> refs.RemoteRefs:
        auth: credentials.GitAuth | None = None
        key = group.key
        if key.secret_name is not None and key.secret_namespace is not None:
            data = await self._read_secret(key.secret_namespace, key.secret_name)
            if data is None:
                raise CredentialsInvalid(
                    f"secret {key.secret_namespace}/{key.secret_name} not found"
                )
            auth = credentials.auth_from_secret(data)
        with credentials.git_environment(
            url=group.call_url,
            auth=auth,
            allow_insecure_http=self._settings.allow_insecure_http,
        ) as env:
            output = await self._ls_remote(
                url=group.call_url, env=env, timeout_s=self._settings.timeout_s
            )
        return refs.parse_ls_remote(output)

    async def _compare(self, group: refs.RemoteGroup, remote: refs.RemoteRefs) -> list[ObjectRef]:
        requested: list[ObjectRef] = []
        for record in group.records:
            resolved = refs.resolve(record.spec_ref, remote)
            if resolved is None:
                log.info("poll_ref_missing", object=str(record.ref))
                continue
            if not refs.needs_reconcile(resolved.sha, record.artifact_revision):
                continue
            if self._recently_requested(record.ref, self._settings.interval_s):
                continue
            try:
                result = self._request_reconcile(record.ref, reason=REASON)
                if inspect.isawaitable(result):
                    await result
            except ReceiverError as exc:
                log.warning("poll_reconcile_refused", object=str(record.ref), error=str(exc))
                continue
            self._metrics.reconciles.inc()
            requested.append(record.ref)
            if self._announce_move is not None:
                self._announce_move(record, resolved)
            log.info(
                "poll_reconcile_requested",
                object=str(record.ref),
                ref=resolved.ref_name,
                remote_sha=resolved.sha,
                artifact_revision=record.artifact_revision,
            )
        return requested

    def _record_failure(self, group: refs.RemoteGroup, *, outcome: str, message: str) -> None:
        state = self._backoff.setdefault(group.key, _Backoff())
        state.failures += 1
        delay_s = backoff.delay_s(
            attempt=state.failures,
            initial_s=self._settings.backoff_initial_s,
            max_s=self._settings.backoff_max_s,
            jitter=self._random(),
        )
        state.retry_at_s = self._clock() + delay_s
        for record in group.records:
            log.warning(
                "poll_failed",
                object=str(record.ref),
                remote=group.call_url,
                outcome=outcome,
                error=message,
                failures=state.failures,
                retry_in_s=round(delay_s, 1),
            )


def _outcome_of(exc: Exception) -> str:
    if isinstance(exc, CredentialsInvalid):
        return "bad_credentials"
    return "malformed"
