"""Commit statuses as a service the app runs: hooks for pushes and watches, a reporter inside.

Edge, but a thin one: it turns the app's events into calls of the pure journey (`journey.py`,
`flux.py`, `scope.py` decide everything) and hands the updates to the `StatusReporter`, which
alone talks to the forges. Every hook is synchronous, never awaits and never raises into the
webhook path or a watch. Tokens are read from the app's watched Secrets at call time, so a
rotated Secret is picked up; they never reach a log, an error or a metric.

Several replicas: the replica that receives a push records the request on each triggered
GitRepository through its reconcile patch (`requested.py`), so every replica's journey learns
it from the GitRepository watch, and only the leader's reporter sends (the others hold). A
restarted process learns the requests of the last `recover_window_s` from its first lists.
Updates decided before every watch has listed once (`recovering`) are sent with `verify`, so
what the previous process already posted is not posted again.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, Final

import structlog
from prometheus_client import CollectorRegistry

from receiver.config import ForgeSettings, SecretKeyRef, StatusSettings
from receiver.events import GitPush, ObjectRef
from receiver.objects import raw
from receiver.poller import refs as poll_refs
from receiver.status import argocd, flux, model, requested, scope
from receiver.status.journey import Journey
from receiver.status.reporter import ReporterMetrics, StatusReporter

log = structlog.get_logger(__name__)

SecretLookup = Callable[[str, str], Mapping[str, bytes] | None]
"""(namespace, name) -> the decoded data of a Secret the app watches, or None."""
Annotate = Callable[[ObjectRef, Mapping[str, str]], None]
"""Annotations to set with the object's next reconcile patch (`ReconcileQueue.note`)."""

POLL_SOURCE: Final = "poll"


class StatusService:
    """Pending on push, running/success/failure from the Flux (and Argo CD Application)
    watches, superseded when a newer commit is applied. Create it before the watches start;
    `start`/`stop` run the reporter."""

    def __init__(
        self,
        *,
        settings: StatusSettings,
        secret_lookup: SecretLookup,
        registry: CollectorRegistry,
        annotate: Annotate | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._settings = settings
        self._secret_lookup = secret_lookup
        self._annotate = annotate
        self._clock = clock
        self.recovering = False
        """Set by the app from start until every watch has listed once."""
        # The latest observation of each reporting object: replayed when a request for the
        # commit it is about arrives after it (a restart, or a watch event out of order).
        self._observations: dict[ObjectRef, flux.Observation] = {}
        # The latest recorded request per GitRepository (kind, namespace, name): a reader
        # listed after its source still learns it (the first lists come in any order).
        self._requests: dict[tuple[str, str, str], requested.RequestedCommit] = {}
        self._forges: dict[str, ForgeSettings] = {forge.host: forge for forge in settings.forges}
        self._journey = Journey(
            naming=settings.naming(),
            max_objects=settings.limits.max_tracked_objects,
            max_commits_per_object=settings.limits.max_commits_per_object,
        )
        self.reporter = StatusReporter(
            forges=[forge.forge_config() for forge in settings.forges],
            token_for=self._token_for,
            metrics=ReporterMetrics(registry),
            limits=settings.limits,
            sleep=sleep,
            clock=clock,
        )
        # HelmReleases whose revisions name a Git commit (scope.names_commits), by key.
        self._commit_releases: set[ObjectRef] = set()
        # What was last warned about a token, per Secret key (or per host and namespace when
        # none is configured); forgotten when the token is found, so each problem warns once.
        self._token_warnings: dict[SecretKeyRef | tuple[str, str | None], str] = {}

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        await self.reporter.start()

    async def stop(self, *, drain_timeout_s: float | None = None) -> None:
        """Send what is queued for at most `drain_timeout_s` (default: the configured one)."""
        timeout_s = self._settings.limits.drain_timeout_s
        await self.reporter.stop(
            drain_timeout_s=timeout_s if drain_timeout_s is None else drain_timeout_s
        )

    # -- hooks (synchronous, never raise) --------------------------------------------------

    def on_push(
        self,
        push: GitPush,
        *,
        downstream: Sequence[ObjectRef],
        sources: Sequence[ObjectRef] = (),
    ) -> None:
        """A push triggered GitRepositories (`sources`): `pending` on its commit for each
        downstream Kustomization and commit-naming HelmRelease, and the request recorded on
        each source's reconcile patch. Call right after the reconcile requests."""
        with _guard("on_push"):
            sha = scope.pushed_commit(push)
            if sha is None or not downstream:
                return
            target = model.locate_any(push.repo_urls)
            if target is None or target.host not in self._forges:
                log.debug(
                    "status_forge_not_configured",
                    forge_host=target.host if target else None,
                    sha=sha,
                    delivery_id=push.delivery_id,
                )
                return
            now = self._clock()
            record = requested.RequestedCommit(
                sha=sha,
                ref=push.ref,
                target=target,
                request_id=push.delivery_id or f"{sha}@{now:.6f}",
                at_s=now,
                before=push.before,
            )
            if self._annotate is not None:
                note = {requested.ANNOTATION: requested.encode(record)}
                for source in sources:
                    self._annotate(source, note)
            self._request(record, downstream)

    def on_remote_moved(
        self,
        *,
        record: poll_refs.PollRecord,
        resolved: poll_refs.Resolved,
        downstream: Sequence[ObjectRef],
    ) -> None:
        """The poller found a GitRepository's remote moved (a push whose webhook was lost) and
        asked a reconcile: `pending` as for that push, then the watches report the outcome.
        The push started from the commit Flux last fetched, which orders it after that one."""
        previous = flux.parse_revision(record.artifact_revision)
        push = GitPush(
            source=POLL_SOURCE,
            event=POLL_SOURCE,
            repo_urls=(record.url,),
            ref=resolved.ref_name,
            before=previous.sha if previous is not None else None,
            after=resolved.sha,
        )
        self.on_push(push, downstream=downstream, sources=[record.ref])

    def on_flux_object(
        self,
        event_type: str,
        obj: Mapping[str, Any],
        *,
        kind: str | None = None,
        source: tuple[str, str, str] | None = None,
    ) -> None:
        """A Kustomization (`kustomize.toolkit.fluxcd.io/v1`), HelmRelease
        (`helm.toolkit.fluxcd.io/v2`) or Argo CD Application (`argoproj.io/v1alpha1`) watch
        event. `kind` names the watched kind for objects that carry none (the watch reports a
        vanished object with its metadata only); `source` is the (kind, namespace, name) it
        reads, whose recorded request applies to it."""
        with _guard("on_flux_object"):
            ref = raw.object_ref(obj, default_kind=kind or "")
            key = scope.status_ref(ref)
            if key is None:
                return
            if event_type == raw.DELETED:
                self._journey.forget(key)
                self._commit_releases.discard(key)
                self._observations.pop(key, None)
                return
            if key.kind == scope.HELM_RELEASE:
                if scope.names_commits(obj):
                    self._commit_releases.add(key)
                else:
                    self._commit_releases.discard(key)
            observation = flux.observe(obj) or argocd.observe(obj)
            if observation is not None:
                observation = dataclasses.replace(observation, obj=key)
                self._observations[key] = observation
            record = self._requests.get(source) if source is not None else None
            if record is not None and self._recent(record):
                self._request(record, [key])  # deduplicated per object by its request id
            if observation is not None:
                self._submit(self._journey.observed(observation))

    def on_source(
        self, event_type: str, obj: Mapping[str, Any], *, downstream: Sequence[ObjectRef]
    ) -> None:
        """A GitRepository watch event: the commit it now serves orders supersession right
        for its downstream objects even when no webhook announced that commit."""
        with _guard("on_source"):
            ref = raw.object_ref(obj, default_kind="GitRepository")
            source = ("GitRepository", ref.namespace, ref.name)
            if event_type == raw.DELETED:
                self._requests.pop(source, None)
                return
            record = requested.read(obj)
            if record is not None and self._recent(record):
                self._requests[source] = record
                if downstream:
                    self._request(record, downstream)
            if not downstream:
                return
            revision = flux.source_revision(obj)
            if revision is None:
                return
            objects = [ref for ref in map(scope.status_ref, downstream) if ref is not None]
            self._journey.source_moved(objects=objects, revision=revision)

    # -- internals -------------------------------------------------------------------------

    def _recent(self, record: requested.RequestedCommit) -> bool:
        window_s = self._settings.limits.recover_window_s
        return record.target.host in self._forges and record.at_s >= self._clock() - window_s

    def _request(self, record: requested.RequestedCommit, downstream: Sequence[ObjectRef]) -> None:
        """`pending` for a request (deduplicated by its id), then what is already known of
        each object at that commit."""
        objects = [
            ref
            for ref in map(scope.status_ref, downstream)
            if ref is not None and self._reports(ref)
        ]
        if not objects:
            return
        self._submit(
            self._journey.requested(
                sha=record.sha,
                ref=record.ref,
                target=record.target,
                objects=objects,
                request_id=record.request_id,
                before=record.before,
            )
        )
        for obj in objects:
            seen = self._observations.get(obj)
            if seen is None or seen.revision is None or not seen.revision.matches(record.sha):
                continue
            applied = seen.applied if seen.applied and seen.applied.matches(record.sha) else None
            self._submit(self._journey.observed(dataclasses.replace(seen, applied=applied)))

    def _submit(self, updates: Sequence[model.StatusUpdate]) -> None:
        if self.recovering:
            updates = [dataclasses.replace(update, verify=True) for update in updates]
        self.reporter.submit_all(updates)

    def _reports(self, ref: ObjectRef) -> bool:
        return ref.kind in (scope.KUSTOMIZATION, scope.APPLICATION) or ref in self._commit_releases

    def _token_for(self, host: str, namespace: str | None) -> str | None:
        """The token for `host` and an object in `namespace`, read now from the Secret."""
        forge = self._forges.get(host.lower())
        if forge is None:
            return None
        ref = forge.token_ref(namespace)
        if ref is None:
            if (host, namespace) not in self._token_warnings:
                self._token_warnings[(host, namespace)] = "not configured"
                log.warning(
                    "status_token_not_configured",
                    forge_host=host,
                    namespace=namespace,
                    detail="set token_secret_ref, or a namespace_token_secret_refs entry",
                )
            return None
        data = self._secret_lookup(ref.namespace, ref.name)
        problem: str | None = None
        token = ""
        if data is None:
            problem = "Secret not found (or not watched)"
        elif ref.key not in data:
            problem = f"Secret has no key {ref.key!r}"
        else:
            try:
                token = data[ref.key].decode("utf-8").strip()
            except UnicodeDecodeError:
                problem = "token is not UTF-8 text"
            else:
                if not token:
                    problem = "token is empty"
        if problem is None:
            self._token_warnings.pop(ref, None)
            return token
        if self._token_warnings.get(ref) != problem:
            self._token_warnings[ref] = problem
            log.warning(
                "status_token_unavailable",
                forge_host=host,
                secret=f"{ref.namespace}/{ref.name}",
                key=ref.key,
                problem=problem,
            )
        return None


@contextmanager
def _guard(hook: str) -> Iterator[None]:
    """A bug in a hook is logged, never raised into the webhook path or a watch."""
    try:
        yield
    except Exception:
        log.exception("status_hook_bug", hook=hook)
