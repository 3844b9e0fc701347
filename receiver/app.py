"""Wiring and lifecycle: builds the parts, starts them in order, stops them in reverse.

Start: cluster (live API server or dry-run inventory) -> watches feeding the receiver table
and the discovery indexes (Argo CD's kinds too, when the cluster serves them) -> reconcile
workers -> HTTP ports. Stop (SIGTERM): stop accepting webhooks, drain the
reconcile queue (bounded), stop the watches and status writer, close the client, exit 0.

Every replica serves webhooks. The singleton work (Receiver status writes, the poller, sending
commit statuses) runs only while this replica holds the leader Lease (`kube/leader.py`), or
always when there is no election (dry-run, or `leader_election.enabled: false`).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import random
import signal
import socket
import time
import uuid
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import structlog
from aiohttp import web

from receiver import backoff, expressions, oidc_keys
from receiver.config import Settings
from receiver.dedupe import DeliveryDeduper
from receiver.errors import ConfigError, KubeError, KubeRejected, TargetNotFound
from receiver.events import ObjectRef
from receiver.http import connections, health, server
from receiver.inspector.journal import Journal, StatusPost
from receiver.inspector.tracker import Announce, Tracker
from receiver.kube import argocd as argocd_kinds
from receiver.kube import inventory, watching
from receiver.kube.client import KubeClient
from receiver.kube.leader import LeaderElector
from receiver.kube.patching import Cluster, LiveCluster, OwnPatches
from receiver.kube.recorder import EventRecorder
from receiver.metrics import Metrics
from receiver.objects import raw, resources
from receiver.objects.raw import Key
from receiver.pipeline import Pipeline, endpoint_source
from receiver.poller import refs as poll_refs
from receiver.poller.runner import GitPythonLsRemote, Poller, PollerMetrics
from receiver.routing import records
from receiver.routing.discovery import GIT_ENDPOINTS, ROUTABLE_ENDPOINTS, Discovery
from receiver.routing.receivers import ReceiverTable, status_patch
from receiver.sources import registry
from receiver.sources.base import OidcSettings
from receiver.status.model import StatusUpdate
from receiver.status.service import StatusService
from receiver.trigger.pending import requested_at
from receiver.trigger.worker import ReconcileQueue

log = structlog.get_logger(__name__)

# Every Flux Receiver type (generic-oidc: issuers and CEL validations from spec.oidcProviders).
RECEIVER_TYPES = frozenset(registry.SOURCES)

# Secrets Flux receivers never use and that can be large or numerous: not watched.
SECRET_FIELD_SELECTOR = "type!=helm.sh/release.v1,type!=kubernetes.io/service-account-token"
SERVICE_ACCOUNT_NAMESPACE = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"
DEFAULT_LEASE_NAMESPACE = "flux-system"


@dataclass(slots=True)
class _Watch:
    name: str
    state: watching.WatchState = field(default_factory=watching.WatchState)


class App:
    """One running gitops-receiver. `client` None means dry-run from `settings.inventory`."""

    def __init__(self, settings: Settings, *, client: KubeClient | None) -> None:
        self.settings = settings
        self.client = client
        self.metrics = Metrics()
        self.receivers = ReceiverTable(
            supported_types=RECEIVER_TYPES, compile=expressions.compile_expression
        )
        self.cluster: Cluster
        self._inventory_objects: list[dict[str, Any]] = []
        hard_refresh = settings.argocd.hard_refresh
        self.own_patches = OwnPatches()
        if client is not None:
            self.cluster = LiveCluster(
                client,
                hard_refresh=hard_refresh,
                own_patches=self.own_patches,
                take_hydration=self._take_hydration,
            )
        else:
            assert settings.inventory is not None
            self._inventory_objects = inventory.load_objects(settings.inventory)
            self.cluster = inventory.InventoryCluster(
                self._inventory_objects,
                hard_refresh=hard_refresh,
                take_hydration=self._take_hydration,
            )
        for endpoint in settings.discovery.endpoints:
            if endpoint not in ROUTABLE_ENDPOINTS or endpoint_source(endpoint) is None:
                raise ConfigError(
                    f"discovery endpoint {endpoint!r} is not one that names what was pushed "
                    f"(use one of {', '.join(sorted(ROUTABLE_ENDPOINTS))})"
                )
        self.discovery = Discovery(with_downstream=settings.discovery.downstream)
        self.status: StatusService | None = None
        if settings.status is not None and client is not None:  # no statuses in dry-run
            self.status = StatusService(
                settings=settings.status,
                secret_lookup=lambda namespace, name: self.receivers.secret((namespace, name)),
                registry=self.metrics.registry,
                annotate=lambda target, annotations: self.queue.note(target, annotations),
            )
        self.replica = settings.inspector.replica or replica_name()
        self.journal = Journal(capacity=settings.inspector.journal_size)
        if self.status is not None:
            self.status.reporter.on_done = self._status_done
        # Each landed patch becomes a ReconcileRequested Event (none in dry-run: no cluster).
        self.events: EventRecorder | None = None
        announce: Announce | None = None
        if client is not None:
            events = self.events = EventRecorder(
                client=client, instance=self.replica, metrics=self.metrics
            )
            announce = lambda target, uid, message: events.record(  # noqa: E731
                target, uid=uid, message=message
            )
        self.queue = ReconcileQueue(
            cluster=self.cluster,
            settings=settings.trigger,
            metrics=self.metrics,
            observer=Tracker(journal=self.journal, announce=announce),
        )
        self.elector: LeaderElector | None = None
        if client is not None and settings.leader_election.enabled:
            self.elector = LeaderElector(
                client=client,
                settings=settings.leader_election,
                namespace=_lease_namespace(settings.leader_election.namespace),
                identity=_identity(),
                on_started=self._start_singletons,
                on_stopped=self._stop_singletons,
            )
        self._singletons: list[asyncio.Task[None]] = []
        self.pipeline = Pipeline(
            receivers=self.receivers,
            queue=self.queue,
            metrics=self.metrics,
            deduper=DeliveryDeduper(window_s=settings.dedupe_window_s),
            allow_cross_namespace=not settings.no_cross_namespace_refs,
            discovery=self.discovery,
            endpoints=dict(settings.discovery.endpoints),
            status=self.status,
            cluster=self.cluster,
        )
        self._poll_records: dict[Key, poll_refs.PollRecord] = {}
        self._poll_secrets: Counter[Key] = Counter()  # GitRepository secretRefs (poller on)
        self._configured_secrets = _configured_secrets(settings)
        self._fetching: set[Key] = set()
        self._secret_deleted: set[Key] = set()  # deleted while being fetched
        self._fetches: set[asyncio.Task[None]] = set()
        self._ls_remote: GitPythonLsRemote | None = None
        self.poller: Poller | None = None
        if settings.poll.enabled:
            self._ls_remote = GitPythonLsRemote(max_threads=settings.poll.concurrency)
            self.poller = Poller(
                settings=settings.poll,
                list_records=lambda: list(self._poll_records.values()),
                read_secret=self._read_secret,
                request_reconcile=lambda ref, *, reason: self.queue.request_all(
                    [ref], reason=reason, remember=False
                ),
                announce_move=self._on_remote_moved,
                recently_requested=self._recently_requested,
                ls_remote=self._ls_remote,
                metrics=PollerMetrics(self.metrics.registry),
                random=random.Random().random,
            )
        self._http: aiohttp.ClientSession | None = None
        self._watches: list[_Watch] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._status_keys: asyncio.Queue[Key] = asyncio.Queue()
        self._status_pending: set[Key] = set()
        self._runners: list[web.AppRunner] = []
        self.ports: dict[str, int] = {}

    # -- readiness -------------------------------------------------------------------------
    def ready(self) -> tuple[bool, str]:
        waiting = [w.name for w in self._watches if not w.state.synced.is_set()]
        if waiting:
            return False, "waiting for first list: " + ", ".join(waiting)
        return True, "ok"

    async def wait_ready(self, *, timeout_s: float) -> None:
        await asyncio.wait_for(
            asyncio.gather(*(w.state.synced.wait() for w in self._watches)), timeout=timeout_s
        )

    # -- lifecycle -------------------------------------------------------------------------
    async def start(self) -> None:
        self._start_key_caches()
        if self.status is not None:
            self.status.recovering = True
            if self.elector is not None:
                self.status.reporter.standby()
        if self.client is not None:
            await self._start_live(self.client)
        else:
            self._start_inventory()
        self._spawn(self._freeze_after_sync(), "gc-freeze")
        if self.status is not None:
            await self.status.start()
            self._spawn(self._recovered_once_listed(self.status), "status-recovery")
        if self.events is not None:
            self.events.start()
        self.queue.start()
        if self.elector is None:
            await self._start_singletons()
        else:
            self._spawn(self.elector.run(), "leader-election")
        await self._serve(
            "webhook",
            server.webhook_app(
                pipeline=self.pipeline,
                metrics=self.metrics,
                max_body_bytes=self.settings.max_body_bytes,
                journal=self.journal,
                limit_settings=self.settings.limits,
            ),
            self.settings.listen.host,
            self.settings.listen.port,
            guard=connections.ConnectionGuard(
                max_connections=self.settings.limits.max_connections,
                header_timeout_s=self.settings.limits.header_timeout_s,
                idle_timeout_s=self.settings.limits.idle_timeout_s,
                metrics=self.metrics,
            ),
        )
        await self._serve(
            "health",
            health.health_app(ready=self.ready, journal=self.journal, replica=self.replica),
            self.settings.health_listen.host,
            self.settings.health_listen.port,
        )
        await self._serve(
            "metrics",
            health.metrics_app(registry=self.metrics.registry),
            self.settings.metrics_listen.host,
            self.settings.metrics_listen.port,
        )

    def leading(self) -> bool:
        """Whether this replica does the singleton work now."""
        return self.elector is None or self.elector.leading.is_set()

    async def stop(self) -> None:
        """Stop accepting webhooks, drain the queue (bounded), then stop everything else."""
        if self._runners:
            await self._runners[0].cleanup()
        await self.queue.drain()
        if self.events is not None:
            await self.events.stop()
        if self.status is not None:
            await self.status.stop()
        for task in [*self._tasks, *self._fetches]:  # the elector releases the Lease as it stops
            task.cancel()
        await asyncio.gather(*self._tasks, *self._fetches, return_exceptions=True)
        await self._stop_singletons()
        for runner in self._runners[1:]:
            await runner.cleanup()
        if self._ls_remote is not None:
            self._ls_remote.close()
        if self._http is not None:
            await self._http.close()
        if self.client is not None:
            await self.client.close()
        gc.unfreeze()
        log.info("stopped")

    async def run_until_signal(self) -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        try:
            await self.start()
        except BaseException:
            await self.stop()
            raise
        await stop.wait()
        log.info("stopping", reason="signal")
        await self.stop()

    async def _serve(
        self,
        name: str,
        app: web.Application,
        host: str,
        port: int,
        *,
        guard: connections.ConnectionGuard | None = None,
    ) -> None:
        """Listen on host:port; a port that cannot be bound is a `ConfigError` (one line)."""
        limits = self.settings.limits
        options: dict[str, Any] = {
            "access_log": None,
            "handle_signals": False,
            "shutdown_timeout": 5,
            # aiohttp's own idle close is a backstop behind the guard's (1 h by default).
            "keepalive_timeout": limits.idle_timeout_s * 2,
            "lingering_time": 2.0,
            # Signatures cover the bytes sent: never inflate before verifying (see limits.py).
            "auto_decompress": False,
        }
        runner = (
            web.AppRunner(app, **options)
            if guard is None
            else connections.GuardedRunner(app, guard=guard, **options)
        )
        await runner.setup()
        self._runners.append(runner)
        site = web.TCPSite(runner, host, port, backlog=1024)
        try:
            await site.start()
        except OSError as exc:
            raise ConfigError(
                f"cannot listen on {host}:{port} for the {name} port: {exc.strerror or exc}"
            ) from None
        self.ports[name] = int(runner.addresses[-1][1])
        log.info("listening", port_name=name, address=f"{host}:{self.ports[name]}")

    def _status_done(self, update: StatusUpdate, outcome: str) -> None:
        """A commit status went out (or was dropped): shown on the deliveries of its commit."""
        self.journal.status_posted(
            commit=update.sha,
            post=StatusPost(name=update.name, state=update.state.value, outcome=outcome),
        )

    def _spawn(self, coro: Any, name: str) -> None:
        self._tasks.append(asyncio.create_task(coro, name=name))

    # -- singleton work (the leader's) -------------------------------------------------------
    async def _start_singletons(self) -> None:
        """Became the leader (or there is no election): write Receiver statuses (all of them,
        since a previous leader may have died with some unwritten), poll, send statuses."""
        self._singletons.append(
            asyncio.create_task(self._write_statuses(), name="receiver-status-writer")
        )
        for key in self.receivers.receiver_keys():
            self._queue_status_write(key)
        if self.poller is not None:
            self._singletons.append(
                asyncio.create_task(self._poll_once_ready(self.poller), name="poller")
            )
        if self.status is not None and not self.status.reporter.active:
            recovered = self.status.reporter.activate()
            log.info("status_reporter_active", recovered=recovered)

    async def _stop_singletons(self) -> None:
        """Lost the lease, or stopping: the singleton work stops now."""
        if self.status is not None and self.elector is not None:
            self.status.reporter.standby()
        tasks, self._singletons = self._singletons, []
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _recovered_once_listed(self, status: StatusService) -> None:
        """Statuses decided before every watch has listed once may repeat what the previous
        process posted: they are checked against the forge (`verify`) until then."""
        await asyncio.gather(*(w.state.synced.wait() for w in self._watches))
        status.recovering = False

    def _start_key_caches(self) -> None:
        """Google's signing keys for `gcr` deliveries, and each generic-oidc issuer's, fetched
        on first use and cached."""
        location = self.settings.gcr.jwks
        self._http = aiohttp.ClientSession()
        self.pipeline.issuer_keys = oidc_keys.IssuerKeys(session=self._http)
        self.pipeline.key_caches = {
            "gcr": oidc_keys.JwksCache(location=location, session=self._http)
        }
        self.pipeline.oidc_expectations = OidcSettings(
            keys={}, audience=self.settings.gcr.audience, emails=self.settings.gcr.emails
        )

    # -- sources of objects ----------------------------------------------------------------
    def _start_inventory(self) -> None:
        """Receivers and the discovery kinds first, so that only referenced Secrets are kept."""
        for obj in self._inventory_objects:
            if obj.get("kind") == "Receiver":
                self._on_receiver(raw.ADDED, obj)
        feeds = self._discovery_feeds()
        if self._wants_argocd():
            feeds += [(kind, self._argocd_feed(kind.kind)) for kind in argocd_kinds.KINDS.values()]
        for obj in self._inventory_objects:
            for resource, on_event in feeds:
                if obj.get("kind") == resource.kind:
                    on_event(raw.ADDED, obj)
        for obj in self._inventory_objects:
            if obj.get("kind") == "Secret":
                self._on_secret(raw.ADDED, obj)

    async def _start_live(self, client: KubeClient) -> None:
        receiver_type = await self._receiver_resource(client)
        self.pipeline.preferred_versions = await _preferred_versions(client)
        referencing = [self._watch(client, receiver_type, self._on_receiver)]
        discovery = self.settings.discovery
        for resource, on_event in self._discovery_feeds():
            versioned = resources.resource_for(
                kind=resource.kind,
                api_version=None,
                preferred_versions=self.pipeline.preferred_versions,
            )
            for namespace in discovery.namespaces or (None,):
                watch = self._watch(
                    client,
                    versioned,
                    on_event,
                    namespace=namespace,
                    label_selector=discovery.label_selector,
                    own_patches=self.own_patches,
                )
                if resource.kind == "GitRepository":
                    referencing.append(watch)
        # Secrets are listed once what references them is known, so the first list keeps only
        # those; a reference that appears later is fetched (`_want_secret`).
        for namespace in self.settings.secret_namespaces or (None,):
            self._watch(
                client,
                resources.SECRET,
                self._on_secret,
                namespace=namespace,
                field_selector=SECRET_FIELD_SELECTOR,
                after=[w.state.synced for w in referencing],
            )
        if self._wants_argocd():
            served = await argocd_kinds.served_kinds(client)
            self._watch_argocd(client, served)
            if len(served) < len(argocd_kinds.KINDS):
                self._spawn(self._recheck_argocd(client, served), "argocd-recheck")

    def _watch_argocd(self, client: KubeClient, kinds: Sequence[resources.ResourceType]) -> None:
        discovery = self.settings.discovery
        for kind in kinds:
            for namespace in discovery.namespaces or (None,):
                self._watch(
                    client,
                    kind,
                    self._argocd_feed(kind.kind),
                    namespace=namespace,
                    label_selector=discovery.label_selector,
                )

    async def _recheck_argocd(
        self, client: KubeClient, served: Sequence[resources.ResourceType]
    ) -> None:
        """Argo CD installed after start-up: every `argocd.recheck_interval_s`, start the
        watches of the kinds served since (until both are)."""
        watched = {kind.kind for kind in served}
        while len(watched) < len(argocd_kinds.KINDS):
            await asyncio.sleep(self.settings.argocd.recheck_interval_s)
            found = await argocd_kinds.served_kinds(client, quiet=True)
            new = [kind for kind in found if kind.kind not in watched]
            if new:
                log.info("argocd_watch_started", kinds=[kind.kind for kind in new])
                self._watch_argocd(client, new)
                watched.update(kind.kind for kind in new)

    def _take_hydration(self, ref: ObjectRef) -> bool:
        """For the cluster's refresh patch: did a routed push ask this Application to hydrate?"""
        return self.discovery.take_hydration(ref)

    def _wants_argocd(self) -> bool:
        """Argo CD objects are indexed for the discovery endpoints and commit statuses."""
        return self.settings.argocd.enabled and bool(
            self.settings.discovery.endpoints or self.status is not None
        )

    def _argocd_feed(self, kind: str) -> watching.OnEvent:
        """The watch callback for one Argo CD kind: the index, and statuses of Applications."""

        def on_event(event: str, obj: Mapping[str, Any]) -> None:
            self.discovery.apply_argocd(event, obj, kind=kind)
            if self.status is not None and kind == argocd_kinds.APPLICATION.kind:
                self.status.on_flux_object(event, obj, kind=kind)

        return on_event

    def _discovery_feeds(self) -> list[tuple[resources.ResourceType, watching.OnEvent]]:
        """Which Flux kinds to watch, given the configured endpoints. GitRepositories always:
        routing, the poller and statuses read them, and their `lastHandledReconcileAt` lets
        the reconcile queue send a held request as soon as Flux handled the last one."""
        endpoints = set(self.settings.discovery.endpoints)
        feeds: list[tuple[resources.ResourceType, watching.OnEvent]] = [
            (resources.GIT_REPOSITORY, self._on_git_repository)
        ]
        if (endpoints and self.settings.discovery.downstream) or self.status is not None:
            feeds.append((resources.KUSTOMIZATION, self._on_reader))
            feeds.append((resources.HELM_RELEASE, self._on_reader))
        if endpoints - GIT_ENDPOINTS:
            for kind in ("ImageRepository", "OCIRepository", "HelmRepository"):
                feeds.append(
                    (
                        resources.resource_for(kind=kind, api_version=None, preferred_versions={}),
                        self.discovery.apply_image_source,
                    )
                )
        return feeds

    def _watch(
        self,
        client: KubeClient,
        resource: resources.ResourceType,
        on_event: watching.OnEvent,
        *,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        own_patches: OwnPatches | None = None,
        after: list[asyncio.Event] | None = None,
    ) -> _Watch:
        """Watch `resource` (once every event of `after` is set; it counts for readiness now);
        MODIFIED events that only echo one of `own_patches` are skipped."""
        watch = _Watch(name=f"{resource.plural}.{resource.group or 'core'}")
        self._watches.append(watch)

        async def run() -> None:
            await asyncio.gather(*(event.wait() for event in after or ()))
            await watching.watch_forever(
                client=client,
                resource=resource,
                on_event=on_event,
                settings=self.settings.watch,
                state=watch.state,
                namespace=namespace,
                label_selector=label_selector,
                field_selector=field_selector,
                own_patches=own_patches,
            )

        self._spawn(run(), f"watch-{watch.name}")
        return watch

    async def _receiver_resource(self, client: KubeClient) -> resources.ResourceType:
        """Receiver `v1` where served, else `v1beta2` (older Flux)."""
        try:
            group = await client.get(f"/apis/{resources.NOTIFICATION_GROUP}")
        except KubeError as exc:
            log.warning("receiver_api_not_found", error=str(exc))
            return resources.RECEIVER
        versions = {v.get("version") for v in group.get("versions") or []}
        return (
            resources.RECEIVER if "v1" in versions or not versions else resources.RECEIVER_V1BETA2
        )

    def _on_reader(self, event: str, obj: Mapping[str, Any]) -> None:
        """A Kustomization or HelmRelease changed: downstream index and commit statuses."""
        record = self.discovery.apply_reader(event, obj)
        if self.status is not None:
            self.status.on_flux_object(
                event, obj, kind=str(obj.get("kind", "")) or None, source=record.source
            )

    def _on_git_repository(self, event: str, obj: Mapping[str, Any]) -> None:
        self.discovery.apply_git_repository(event, obj)
        ref = records.object_ref(obj, resources.GIT_REPOSITORY)
        status = obj.get("status")
        handled = status.get("lastHandledReconcileAt") if isinstance(status, Mapping) else None
        if isinstance(handled, str) and event != raw.DELETED:
            self.queue.handled(ref, requested_at=handled)
        if self.status is not None:
            self.status.on_source(event, obj, downstream=self.discovery.readers.downstream_of(ref))
        if self.poller is not None:
            key = raw.object_key(obj)
            old = self._poll_records.pop(key, None)
            if event != raw.DELETED:
                record = self._poll_records[key] = poll_refs.record_from_object(obj)
                if record.secret_name is not None:
                    self._poll_secrets[(key[0], record.secret_name)] += 1
                    self._want_secret((key[0], record.secret_name))
            if old is not None and old.secret_name is not None:
                self._poll_secrets[(key[0], old.secret_name)] -= 1
                self._unwant_secret((key[0], old.secret_name))

    async def _freeze_after_sync(self) -> None:
        """Once the first lists are in, move everything alive to the collector's permanent
        generation: the routing records of every watched object stay for the life of the
        process, and a full collection would otherwise walk all of them again and again
        under load (tens of milliseconds at 10,000 objects, the event loop stalled)."""
        await asyncio.gather(*(w.state.synced.wait() for w in self._watches))
        gc.collect()
        gc.freeze()

    async def _poll_once_ready(self, poller: Poller) -> None:
        """The first tick waits for the first lists, so it sees every GitRepository."""
        await asyncio.gather(*(w.state.synced.wait() for w in self._watches))
        await poller.run()

    async def _read_secret(self, namespace: str, name: str) -> Mapping[str, bytes] | None:
        return self.receivers.secret((namespace, name))

    def _on_remote_moved(self, record: poll_refs.PollRecord, resolved: poll_refs.Resolved) -> None:
        """The poller reconciled a push whose webhook never came: statuses as for a push."""
        if self.status is not None:
            self.status.on_remote_moved(
                record=record,
                resolved=resolved,
                downstream=self.discovery.readers.downstream_of(record.ref),
            )

    def _recently_requested(self, ref: ObjectRef, within_s: float) -> bool:
        last = self.queue.last_requested_ns(ref)
        return last is not None and time.time_ns() - last < within_s * 1e9

    # -- receivers and their status ----------------------------------------------------------
    def _on_receiver(self, event: str, obj: Mapping[str, Any]) -> None:
        old = self.receivers.entry(raw.object_key(obj))
        key = self.receivers.apply_receiver(event, obj)
        new = self.receivers.entry(key)
        if new is not None and new.secret_name:  # generic-oidc Receivers name none
            self._want_secret((new.namespace, new.secret_name))
        if (
            old is not None
            and old.secret_name
            and (new is None or new.secret_name != old.secret_name)
        ):
            self._unwant_secret((old.namespace, old.secret_name))
        self._receiver_changed(key)

    # -- Secrets: only those something references are kept --------------------------------
    def _secret_wanted(self, key: Key) -> bool:
        return (
            key in self._configured_secrets
            or bool(self.receivers.naming_secret(key))
            or self._poll_secrets[key] > 0
        )

    def _on_secret(self, event: str, obj: Mapping[str, Any]) -> None:
        """A Secret from the watch: kept (decoded) only when referenced, else dropped here."""
        key = raw.object_key(obj)
        if event == raw.DELETED:
            if key in self._fetching:
                self._secret_deleted.add(key)
        elif not self._secret_wanted(key):
            self._unwant_secret(key)
            return
        for receiver_key in self.receivers.apply_secret(event, obj):
            self._receiver_changed(receiver_key)

    def _unwant_secret(self, key: Key) -> None:
        if not self._secret_wanted(key) and self.receivers.secret(key) is not None:
            self.receivers.forget_secret(key)

    def _want_secret(self, key: Key) -> None:
        """A new reference to a Secret the watch dropped (or has not listed yet): fetch it."""
        if self.client is None or key in self._fetching or self.receivers.secret(key) is not None:
            return
        namespaces = self.settings.secret_namespaces
        if namespaces and key[0] not in namespaces:
            log.warning(
                "secret_outside_namespaces",
                secret=f"{key[0]}/{key[1]}",
                detail="add the namespace to secret_namespaces (and its Role)",
            )
            return
        if not self._secret_watches_synced():
            return  # the first list brings it
        self._fetching.add(key)
        task = asyncio.create_task(self._fetch_secret(self.client, key), name="secret-fetch")
        self._fetches.add(task)
        task.add_done_callback(self._fetches.discard)

    def _secret_watches_synced(self) -> bool:
        watches = [w for w in self._watches if w.name == "secrets.core"]
        return bool(watches) and all(w.state.synced.is_set() for w in watches)

    async def _fetch_secret(self, client: KubeClient, key: Key) -> None:
        try:
            obj = await client.get(resources.SECRET.object_path(namespace=key[0], name=key[1]))
        except KubeError as exc:
            if not isinstance(exc, TargetNotFound):  # absent: the watch brings it if created
                log.warning("secret_fetch_failed", secret=f"{key[0]}/{key[1]}", error=str(exc))
            self._fetching.discard(key)
            for receiver_key in self.receivers.naming_secret(key):
                self._receiver_changed(receiver_key)  # its status waited for this answer
            return
        self._fetching.discard(key)
        # Deleted (or brought by the watch) while this GET was in flight: the watch is newer.
        deleted = key in self._secret_deleted
        self._secret_deleted.discard(key)
        if not deleted and self.receivers.secret(key) is None:
            self._on_secret(raw.MODIFIED, obj)
        else:
            for receiver_key in self.receivers.naming_secret(key):
                self._receiver_changed(receiver_key)

    def _receiver_changed(self, key: Key) -> None:
        entry = self.receivers.entry(key)
        if entry is None:
            return
        if (entry.namespace, entry.secret_name) in self._fetching:
            return  # its Secret is being read: the status follows the answer, not a TokenNotFound
        if entry.token == b"":
            log.warning(
                "receiver_empty_token",
                receiver=f"{key[0]}/{key[1]}",
                detail="the webhook path is the only credential (GitLab agent style)",
            )
        self._queue_status_write(key)

    def _queue_status_write(self, key: Key) -> None:
        """Have the status writer (the leader's) write this Receiver's status, once."""
        entry = self.receivers.entry(key)
        if entry is None or (entry.namespace, entry.secret_name) in self._fetching:
            return
        if self.settings.write_receiver_status and key not in self._status_pending:
            self._status_pending.add(key)
            self._status_keys.put_nowait(key)

    def _status_patch(self, key: Key) -> dict[str, Any] | None:
        """In a function of its own so that no frame keeps the entry (and its token) alive."""
        entry = self.receivers.entry(key)
        return None if entry is None else status_patch(entry, now=_rfc3339_now())

    async def _write_statuses(self) -> None:
        rng = random.Random()
        while True:
            key = await self._status_keys.get()
            self._status_pending.discard(key)
            patch = self._status_patch(key)
            if patch is None:
                continue
            await self._write_status(key, patch, random=rng.random)

    async def _write_status(
        self, key: Key, patch: Mapping[str, Any], *, random: Callable[[], float]
    ) -> None:
        """One Receiver's `.status` patch, retried as `receiver_status` says; logged, counted."""
        receiver = f"{key[0]}/{key[1]}"
        try:
            await backoff.retry(
                lambda: self.cluster.write_status(
                    resources.RECEIVER, namespace=key[0], name=key[1], patch=patch
                ),
                policy=self.settings.receiver_status,
                retryable=_transient,
                random=random,
                sleep=asyncio.sleep,
                on_retry=lambda exc, attempt, _delay_s: log.warning(
                    "receiver_status_retry", receiver=receiver, attempt=attempt, error=str(exc)
                ),
            )
        except KubeRejected as exc:
            self.metrics.status_writes.labels("rejected").inc()
            log.error("receiver_status_rejected", receiver=receiver, error=str(exc))
        except KubeError as exc:
            self.metrics.status_writes.labels("failed").inc()
            log.error("receiver_status_failed", receiver=receiver, error=str(exc))
        else:
            self.metrics.status_writes.labels("written").inc()


def _transient(exc: Exception) -> bool:
    """A Receiver status write worth retrying: the API server failed, it did not refuse."""
    return isinstance(exc, KubeError) and not isinstance(exc, KubeRejected)


def replica_name() -> str:
    """This replica's name: the pod's (`POD_NAME` from the downward API), else the host's."""
    return os.environ.get("POD_NAME") or socket.gethostname()


def _configured_secrets(settings: Settings) -> frozenset[Key]:
    """Secrets the configuration names: discovery endpoints' and forge tokens'."""
    keys = {
        (endpoint.secret_ref.namespace, endpoint.secret_ref.name)
        for endpoint in settings.discovery.endpoints.values()
    }
    for forge in settings.status.forges if settings.status is not None else ():
        if forge.token_secret_ref is not None:
            keys.add((forge.token_secret_ref.namespace, forge.token_secret_ref.name))
        for namespace, ref in forge.namespace_token_secret_refs.items():
            keys.add((namespace, ref.name))
    return frozenset(keys)


async def _preferred_versions(client: KubeClient) -> dict[str, str]:
    versions: dict[str, str] = {}
    for group in {group for group, _, _ in resources.FLUX_KINDS.values()}:
        with contextlib.suppress(KubeError):
            preferred = (await client.get(f"/apis/{group}")).get("preferredVersion") or {}
            if preferred.get("version"):
                versions[group] = str(preferred["version"])
    return versions


def _lease_namespace(configured: str | None) -> str:
    """The configured namespace, else the pod's (downward API or service account), else
    flux-system."""
    if configured:
        return configured
    if os.environ.get("POD_NAMESPACE"):
        return os.environ["POD_NAMESPACE"]
    with contextlib.suppress(OSError), open(SERVICE_ACCOUNT_NAMESPACE, encoding="utf-8") as file:
        return file.read().strip() or DEFAULT_LEASE_NAMESPACE
    return DEFAULT_LEASE_NAMESPACE


def _identity() -> str:
    """Unique per process, readable in the Lease: the pod name (or host) plus a random tail,
    as client-go does, so a restarted pod never mistakes the old holder for itself."""
    host = os.environ.get("POD_NAME") or socket.gethostname()
    return f"{host}_{uuid.uuid4().hex[:12]}"


def _rfc3339_now() -> str:
    return requested_at(time.time_ns()).split(".")[0] + "Z"
