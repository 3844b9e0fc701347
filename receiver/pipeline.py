"""One delivery through the stages; the only place that knows their order.

Both paths run the same stages, and differ only in resolve and route:

    resolve -> authenticate -> parse -> deduplicate -> route -> queue -> answer

Resolve: the Receiver path (`/hook/<digest>`) finds the Receiver by its secret path and
refuses it when suspended or not Ready; the discovery path (`/webhooks/<endpoint>[/<token>]`)
finds the endpoint and its Secret, and checks senders that sign nothing (Docker Hub, Quay,
ACR) by the token in the path (`verify_path_token`), a verifier like the others. On the
Receiver path the types Flux filters then check `spec.events`. Parse gives every event of the
delivery (a Bitbucket push of several refs is several pushes); duplicates are skipped by the
first event's delivery id. Route: a Receiver reconciles its `spec.resources` on any event but
a ping; an endpoint routes each push through the discovery indexes (an Argo CD Application
or ApplicationSet it affects gets a refresh request). Every Git push reports
its commit statuses once its reconcile requests are queued.
The answer is one `Delivery` record, refused deliveries included (`error`): the HTTP edge
answers, logs and counts from it, and alone turns errors into statuses. The queue accepts
synchronously, so the answer goes out as soon as the requests are queued; the only awaits are
for OIDC signing keys (`gcr`), which come from a cache, and, for a Receiver with CEL filters
(`resourceFilter`, `resources[].filter`), the reads of the objects it names, as Flux does.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Final

import structlog

from receiver import filtering, logs, oidc_keys
from receiver.config import DiscoveryEndpoint
from receiver.dedupe import DeliveryDeduper
from receiver.errors import (
    AuthenticationFailed,
    FilterFailed,
    JwksUnavailable,
    KubeError,
    QueueRefused,
    ReceiverError,
    ReceiverNotReady,
    ResourcesUnreadable,
    UnknownHook,
    UnknownKind,
)
from receiver.events import Event, GitPush, Ignored, ImagePush, ObjectRef, Signal
from receiver.kube.patching import Cluster
from receiver.metrics import Metrics
from receiver.objects.resources import Selector, resource_for
from receiver.routing.discovery import Discovery, Routed
from receiver.routing.index import Skip
from receiver.routing.receivers import Filters, ReceiverEntry, ReceiverTable
from receiver.sources import generic_oidc, generic_push, registry
from receiver.sources.base import (
    Credentials,
    OidcSettings,
    RawDelivery,
    Source,
    Verify,
    event_allowed,
    verify_path_token,
)
from receiver.status.service import StatusService
from receiver.trigger.worker import ReconcileQueue, Target

log = structlog.get_logger(__name__)

RECEIVER_PATH: Final = "receiver"
DISCOVERY_PATH: Final = "discovery"
# What asks for nothing: a Receiver reconciles on any event but a ping (as Flux does); an
# endpoint routes pushes only.
_INERT_ON_RECEIVER: Final = (Ignored,)
_INERT_ON_ENDPOINT: Final = (Ignored, Signal)


class Outcome(enum.StrEnum):
    """What became of a delivery that was not refused: its log line's and metric's label."""

    ACCEPTED = "accepted"  # reconcile requests queued
    UNROUTED = "unrouted"  # an endpoint's push that no watched object reads
    FILTERED = "filtered"  # the event type is not in the Receiver's spec.events
    IGNORED = "ignored"  # a ping, or (on an endpoint) an event that is not a push
    DUPLICATE = "duplicate"  # the same delivery id was taken within the window


_ANSWER_STATUS: Final = {
    Outcome.ACCEPTED: "accepted",
    Outcome.UNROUTED: "accepted",
    Outcome.FILTERED: "ignored",
    Outcome.IGNORED: "ignored",
    Outcome.DUPLICATE: "duplicate",
}


@dataclass(frozen=True, slots=True)
class Delivery:
    """One delivery through the stages: what arrived, what was decided, what was queued.

    `receiver` ("namespace/name") or `endpoint` says whom it was for and `source` the sender's
    type, once resolved. `outcome` is None exactly when the delivery was refused, and `error`
    then says why. `targets` is what was queued (also when a Receiver's CEL filter then failed
    the delivery). `skipped` holds the objects routing left alone, each with why (the
    discovery path, and what a Receiver's CEL filters refused; the discovery answer gives
    their number, the delivery inspector each one). `reason` is what the answer says when
    nothing was queued. Holds no secret: no header, token, signature or body.
    """

    path_kind: str
    receiver: str | None = None
    endpoint: str | None = None
    source: str | None = None
    event_type: str | None = None
    events: tuple[Event, ...] = ()
    outcome: Outcome | None = None
    targets: tuple[Target, ...] = ()
    skipped: tuple[Skip, ...] | None = None
    reason: str | None = None
    error: ReceiverError | None = None

    @property
    def delivery_id(self) -> str | None:
        return self.events[0].delivery_id if self.events else None

    def answer(self) -> dict[str, Any]:
        """The JSON body of the 200 answer; only for a delivery that was not refused."""
        assert self.outcome is not None
        body: dict[str, Any] = {"status": _ANSWER_STATUS[self.outcome]}
        if self.outcome is Outcome.ACCEPTED or self.outcome is Outcome.UNROUTED:
            body["targets"] = len(self.targets)
            if self.skipped is not None and self.path_kind == DISCOVERY_PATH:
                body["skipped"] = len(self.skipped)
        if self.reason is not None:
            body["reason"] = self.reason
        return body


@dataclass(slots=True)
class _Resolved:
    """What resolve found: whose delivery it is, and how and against what to check it."""

    path_kind: str
    name: str  # the Receiver's "namespace/name", or the endpoint
    scope: str  # where delivery ids are deduplicated
    source: Source
    verify: Verify
    credentials: Credentials
    allowed_events: tuple[str, ...] | None  # spec.events, for the types Flux filters
    inert: tuple[type[Event], ...]
    entry: ReceiverEntry | None  # the Receiver, whose resources route; None for an endpoint

    def record(
        self,
        *,
        event_type: str | None,
        events: tuple[Event, ...] = (),
        outcome: Outcome | None = None,
        targets: tuple[Target, ...] = (),
        skipped: tuple[Skip, ...] | None = None,
        reason: str | None = None,
        error: ReceiverError | None = None,
    ) -> Delivery:
        on_receiver = self.entry is not None
        return Delivery(
            self.path_kind,
            self.name if on_receiver else None,
            None if on_receiver else self.name,
            self.source.type_name,
            event_type,
            events,
            outcome,
            targets,
            skipped,
            reason,
            error,
        )


@dataclass(slots=True)
class _Routing:
    """What route decided: the targets, and the commit statuses to report once queued."""

    outcome: Outcome
    targets: tuple[Target, ...]
    queue_reason: str  # what the reconcile requests say they are for
    skipped: tuple[Skip, ...] | None = None
    reason: str | None = None  # why nothing was routed
    pushes: tuple[_StatusRequest, ...] = ()
    failure: str | None = None  # a Receiver filter that failed: the request fails once queued


@dataclass(frozen=True, slots=True)
class _StatusRequest:
    """A routed push, for commit statuses: the GitRepositories whose reconcile patches record
    it, and the objects whose statuses it starts."""

    push: GitPush
    sources: tuple[ObjectRef, ...]
    downstream: tuple[ObjectRef, ...]


@dataclass(slots=True)
class Pipeline:
    receivers: ReceiverTable
    queue: ReconcileQueue
    metrics: Metrics
    deduper: DeliveryDeduper
    discovery: Discovery = field(default_factory=lambda: Discovery(with_downstream=False))
    endpoints: dict[str, DiscoveryEndpoint] = field(default_factory=dict)
    key_caches: dict[str, oidc_keys.JwksCache] = field(default_factory=dict)
    issuer_keys: oidc_keys.IssuerKeys | None = None  # generic-oidc: one key set per issuer
    oidc_expectations: OidcSettings | None = None
    status: StatusService | None = None
    cluster: Cluster | None = None  # read by Receivers with CEL filters only
    allow_cross_namespace: bool = True
    preferred_versions: dict[str, str] = field(default_factory=dict)
    monotonic: Callable[[], float] = time.monotonic
    wall_clock: Callable[[], float] = time.time
    # Receiver -> its targets, valid while the table holds that very entry (any change to the
    # Receiver or its Secret replaces it) and `preferred_versions` is the same object.
    _targets: dict[tuple[str, str], tuple[ReceiverEntry, object, tuple[Target, ...]]] = field(
        default_factory=dict
    )

    # -- the two entries: they differ in resolve only ----------------------------------------

    async def handle_hook(self, path: str, delivery: RawDelivery) -> Delivery:
        """One delivery to a Receiver's secret path (`/hook/<digest>`)."""
        entry = self.receivers.lookup(path)
        if entry is None:
            return Delivery(RECEIVER_PATH, error=UnknownHook("no receiver at this path"))
        name = f"{entry.namespace}/{entry.name}"
        try:
            resolved = self._resolve_receiver(entry, name=name)
        except ReceiverError as exc:
            return Delivery(RECEIVER_PATH, receiver=name, source=entry.type_name, error=exc)
        return await self._deliver(resolved, delivery)

    async def handle_discovery(self, endpoint: str, delivery: RawDelivery) -> Delivery:
        """One delivery to `/webhooks/<endpoint>` (`delivery.path_token` set when the path
        carries a token): routed to the objects it affects."""
        settings = self.endpoints.get(endpoint)
        source = endpoint_source(endpoint)
        if settings is None or source is None:
            error = UnknownHook(f"no discovery endpoint {endpoint!r} is configured")
            return Delivery(DISCOVERY_PATH, error=error)
        try:
            resolved = self._resolve_endpoint(
                endpoint, settings=settings, source=source, delivery=delivery
            )
        except ReceiverError as exc:
            return Delivery(DISCOVERY_PATH, endpoint=endpoint, source=source.type_name, error=exc)
        return await self._deliver(resolved, delivery)

    # -- resolve ---------------------------------------------------------------------------

    def _resolve_receiver(self, entry: ReceiverEntry, *, name: str) -> _Resolved:
        if entry.suspended:
            raise ReceiverNotReady("receiver is suspended")
        source = registry.get(entry.type_name)
        if not entry.ready or source is None or entry.token is None:
            raise ReceiverNotReady(f"receiver is not ready: {entry.reason}")
        credentials = Credentials(
            token=entry.token, secret_data=entry.secret_data, now_s=self.wall_clock()
        )
        filtered = entry.type_name in registry.EVENT_FILTERED_TYPES
        return _Resolved(
            path_kind=RECEIVER_PATH,
            name=name,
            scope=name,
            source=source,
            verify=source.verify,
            credentials=credentials,
            allowed_events=entry.events if filtered else None,
            inert=_INERT_ON_RECEIVER,
            entry=entry,
        )

    def _resolve_endpoint(
        self,
        endpoint: str,
        *,
        settings: DiscoveryEndpoint,
        source: Source,
        delivery: RawDelivery,
    ) -> _Resolved:
        """Senders that sign nothing must call `/webhooks/<endpoint>/<token>`: the token in the
        path is their credential, as the secret path is for Flux's Receivers."""
        ref = settings.secret_ref
        secret = self.receivers.secret((ref.namespace, ref.name))
        if secret is None or (source.uses_token and ref.key not in secret):
            raise ReceiverNotReady(
                f"endpoint secret {ref.namespace}/{ref.name} (key {ref.key!r}) not found"
            )
        verify = source.verify
        if not source.authenticates_payload:
            verify = verify_path_token
        elif delivery.path_token is not None:
            raise UnknownHook(f"/webhooks/{endpoint} takes no token in its path")
        credentials = Credentials(
            token=secret.get(ref.key, b""), secret_data=secret, now_s=self.wall_clock()
        )
        return _Resolved(
            path_kind=DISCOVERY_PATH,
            name=endpoint,
            scope=f"webhooks/{endpoint}",
            source=source,
            verify=verify,
            credentials=credentials,
            allowed_events=None,
            inert=_INERT_ON_ENDPOINT,
            entry=None,
        )

    # -- the stages both paths share -------------------------------------------------------

    async def _deliver(self, resolved: _Resolved, delivery: RawDelivery) -> Delivery:
        """authenticate -> parse -> deduplicate -> route -> queue -> answer."""
        event_type: str | None = None
        events: tuple[Event, ...] = ()
        try:
            claims = await self._authenticate(resolved, delivery)
            event_type = resolved.source.event_name(delivery)
            allowed = resolved.allowed_events
            if allowed is not None and not event_allowed(event_type, allowed):
                reason = f"event {event_type!r} is not in spec.events"
                return resolved.record(
                    event_type=event_type, outcome=Outcome.FILTERED, reason=reason
                )
            events = resolved.source.parse(delivery)
            inert = _inert_reason(events, inert=resolved.inert)
            if inert is not None:
                return resolved.record(
                    event_type=event_type, events=events, outcome=Outcome.IGNORED, reason=inert
                )
            delivery_id = events[0].delivery_id
            if self.deduper.seen_before(
                scope=resolved.scope, delivery_id=delivery_id, now_s=self.monotonic()
            ):
                return resolved.record(
                    event_type=event_type,
                    events=events,
                    outcome=Outcome.DUPLICATE,
                    reason="delivery already accepted",
                )
            routing = await self._route(resolved, events, delivery, claims=claims)
            try:
                self.queue.request_all(routing.targets, reason=routing.queue_reason)
            except QueueRefused:
                # Not taken: the sender's retry must not be answered as a duplicate.
                self.deduper.forget(scope=resolved.scope, delivery_id=delivery_id)
                raise
            if self.status is not None:
                for request in routing.pushes:
                    self.status.on_push(
                        request.push, downstream=request.downstream, sources=request.sources
                    )
            if routing.failure is not None:
                # As Flux: what the filters accepted is requested, then the request fails.
                return resolved.record(
                    event_type=event_type,
                    events=events,
                    targets=routing.targets,
                    skipped=routing.skipped,
                    error=FilterFailed(f"resource filter failed: {routing.failure}"),
                )
            return resolved.record(
                event_type=event_type,
                events=events,
                outcome=routing.outcome,
                targets=routing.targets,
                skipped=routing.skipped,
                reason=routing.reason,
            )
        except ReceiverError as exc:
            return resolved.record(event_type=event_type, events=events, error=exc)

    async def _authenticate(
        self, resolved: _Resolved, delivery: RawDelivery
    ) -> dict[str, Any] | None:
        """The resolved verifier; OIDC types with keys from the cache (refreshed once on an
        unknown key id). Failures are counted by type. Returns a generic-oidc token's claims."""
        source = resolved.source
        cache = self.key_caches.get(source.type_name)
        try:
            if source is generic_oidc.SOURCE and resolved.entry is not None:
                return await self._oidc_claims(resolved.entry, delivery)
            if cache is None:
                resolved.verify(delivery, resolved.credentials)
            else:
                with_claims = replace(resolved.credentials, oidc=self.oidc_expectations)
                await oidc_keys.verify_with_refresh(
                    source=source, delivery=delivery, credentials=with_claims, cache=cache
                )
        except AuthenticationFailed:
            self.metrics.signature_failures.labels(source.type_name).inc()
            raise
        return None

    async def _oidc_claims(self, entry: ReceiverEntry, delivery: RawDelivery) -> dict[str, Any]:
        """As Flux: the provider whose issuerURL is the token's `iss` verifies it (keys from the
        issuer's JWKS, discovered once and cached), then its CEL validations decide."""
        issuer = generic_oidc.unverified_issuer(delivery)
        provider = next((p for p in entry.oidc_providers if p.issuer_url == issuer), None)
        if provider is None:
            raise AuthenticationFailed(f"no oidcProvider configured for issuer {issuer!r}")
        if self.issuer_keys is None:
            raise JwksUnavailable("no OIDC key store is configured")
        cache = await self.issuer_keys.cache_for(issuer)
        credentials = Credentials(
            token=b"",
            now_s=self.wall_clock(),
            oidc=OidcSettings(keys={}, audience=provider.audience, issuers=(issuer,)),
        )
        claims = await oidc_keys.call_with_refresh(
            lambda keys: generic_oidc.verified_claims(
                delivery, oidc_keys.with_keys(credentials, keys)
            ),
            cache=cache,
        )
        filtering.check_claims(provider, claims)
        return claims

    # -- route -----------------------------------------------------------------------------

    async def _route(
        self,
        resolved: _Resolved,
        events: tuple[Event, ...],
        delivery: RawDelivery,
        *,
        claims: dict[str, Any] | None,
    ) -> _Routing:
        if resolved.entry is not None:
            return await self._route_receiver(
                resolved.entry, events, name=resolved.name, delivery=delivery, claims=claims
            )
        return self._route_endpoint(resolved.name, events)

    async def _route_receiver(
        self,
        entry: ReceiverEntry,
        events: tuple[Event, ...],
        *,
        name: str,
        delivery: RawDelivery,
        claims: dict[str, Any] | None,
    ) -> _Routing:
        """Every resource of the Receiver (those its CEL filters accept, when it has any);
        each Git push reports statuses for the Kustomizations and HelmReleases the resources
        are or feed."""
        failure: str | None = None
        skipped: tuple[Skip, ...] | None = None
        if entry.filters is None:
            targets: tuple[Target, ...] = self._targets_of(entry)
        else:
            targets, skipped, failure = await self._filtered_targets(
                entry, entry.filters, delivery, claims=claims
            )
        pushes: tuple[_StatusRequest, ...] = ()
        if self.status is not None:
            git_pushes = [event for event in events if isinstance(event, GitPush)]
            if git_pushes:
                refs = [t for t in targets if isinstance(t, ObjectRef)]
                sources = tuple(t for t in refs if t.kind == "GitRepository")
                direct = [t for t in refs if t.kind in ("Kustomization", "HelmRelease")]
                downstream = (*self.discovery.downstream_of(sources), *direct)
                pushes = tuple(_StatusRequest(push, sources, downstream) for push in git_pushes)
        return _Routing(
            Outcome.ACCEPTED,
            targets,
            f"receiver {name}",
            skipped=skipped,
            pushes=pushes,
            failure=failure,
        )

    async def _filtered_targets(
        self,
        entry: ReceiverEntry,
        filters: Filters,
        delivery: RawDelivery,
        *,
        claims: dict[str, Any] | None,
    ) -> tuple[tuple[Target, ...], tuple[Skip, ...], str | None]:
        """The objects the Receiver's CEL filters accept, read from the cluster as Flux reads
        them; those a filter refused; and the failures (an expression that errs on this
        delivery), if any."""
        if self.cluster is None:
            raise ResourcesUnreadable("no cluster to read the filtered receiver's objects from")
        req = filtering.request_document(delivery, type_name=entry.type_name)
        try:
            result = await filtering.apply(
                filters, self._indexed_targets(entry), req=req, claims=claims, cluster=self.cluster
            )
        except KubeError as exc:
            raise ResourcesUnreadable(f"cannot read the receiver's objects: {exc}") from None
        for missing in result.missing:
            self.metrics.reconcile_requests.labels(missing.split("/", 1)[0], "not_found").inc()
        failure = "; ".join(result.failures) if result.failures else None
        return tuple(result.accepted), tuple(result.rejected), failure

    def _route_endpoint(self, endpoint: str, events: tuple[Event, ...]) -> _Routing:
        """Each event through the discovery indexes; the union of what they reach."""
        targets: dict[ObjectRef, None] = {}
        skipped: list[Skip] = []
        reasons: list[str] = []
        pushes: list[_StatusRequest] = []
        for event in events:
            routed = self.discovery.route(event)
            self.discovery.request_hydration(routed.hydrate)
            targets.update(dict.fromkeys(routed.targets))
            skipped.extend(routed.skipped)
            _log_route(event, routed, endpoint=endpoint)
            if routed.reason and not routed.targets:
                reasons.append(routed.reason)
            reporting = routed.sources or routed.applications
            if self.status is not None and isinstance(event, GitPush) and reporting:
                downstream = self.discovery.downstream_of(routed.sources)
                pushes.append(
                    _StatusRequest(event, routed.sources, (*downstream, *routed.applications))
                )
        return _Routing(
            Outcome.ACCEPTED if targets else Outcome.UNROUTED,
            tuple(targets),
            f"webhooks/{endpoint}",
            skipped=tuple(skipped),
            reason="; ".join(dict.fromkeys(reasons)) if not targets and reasons else None,
            pushes=tuple(pushes),
        )

    def _targets_of(self, entry: ReceiverEntry) -> tuple[Target, ...]:
        """`receiver_targets`, computed once per version of the Receiver; one that refuses a
        reference is never cached, so each delivery still logs and counts the refusal."""
        key = (entry.namespace, entry.name)
        cached = self._targets.get(key)
        if cached is not None and cached[0] is entry and cached[1] is self.preferred_versions:
            return cached[2]
        targets = tuple(self.receiver_targets(entry))
        if len(targets) == len(entry.resources):
            if len(self._targets) > len(self.receivers):  # deleted Receivers' leftovers
                self._targets.clear()
            self._targets[key] = (entry, self.preferred_versions, targets)
        return targets

    def receiver_targets(self, entry: ReceiverEntry) -> list[Target]:
        """Every resource of the receiver as a target; refused ones are logged and counted."""
        return [target for _, target in self._indexed_targets(entry)]

    def _indexed_targets(self, entry: ReceiverEntry) -> list[tuple[int, Target]]:
        """`receiver_targets`, each with its index in `spec.resources` (for its filter)."""
        targets: list[tuple[int, Target]] = []
        for index, ref in enumerate(entry.resources):
            if ref.namespace != entry.namespace and not self.allow_cross_namespace:
                self.metrics.reconcile_requests.labels(ref.kind, "refused").inc()
                log.warning(
                    "cross_namespace_ref_refused",
                    receiver=f"{entry.namespace}/{entry.name}",
                    target=f"{ref.kind}/{ref.namespace}/{ref.name}",
                )
                continue
            try:
                resource = resource_for(
                    kind=ref.kind,
                    api_version=ref.api_version,
                    preferred_versions=self.preferred_versions,
                )
            except UnknownKind as exc:
                self.metrics.reconcile_requests.labels("unknown", "refused").inc()
                log.warning(
                    "resource_ref_refused",
                    receiver=f"{entry.namespace}/{entry.name}",
                    error=str(exc),
                )
                continue
            if ref.name == "*":
                selector = Selector(resource.api_version, ref.kind, ref.namespace, ref.match_labels)
                targets.append((index, selector))
            else:
                target = ObjectRef(resource.api_version, ref.kind, ref.namespace, ref.name)
                targets.append((index, target))
        return targets


def endpoint_source(endpoint: str) -> Source | None:
    """The source behind `/webhooks/<endpoint>`: `generic` is gitops-receiver's own format."""
    return generic_push.SOURCE if endpoint == "generic" else registry.get(endpoint)


def _inert_reason(events: tuple[Event, ...], *, inert: tuple[type[Event], ...]) -> str | None:
    """Why the delivery asks for nothing when every event is inert; None when one is not."""
    for event in events:
        if not isinstance(event, inert):
            return None
    return "; ".join(dict.fromkeys(_ignored_reason(event) for event in events))


def _ignored_reason(event: Event) -> str:
    if isinstance(event, Ignored):
        return event.reason
    return f"{event.event or 'unnamed'} event is not a push"


def _log_route(event: Event, routed: Routed, *, endpoint: str) -> None:
    """One info line per object left alone, with why; one debug line per routed event."""
    if not routed.skipped and not logs.debug_enabled():
        return
    subject: dict[str, str | None]
    if isinstance(event, GitPush):
        subject = {
            "repo": event.repo_name or (event.repo_urls[0] if event.repo_urls else ""),
            "ref": event.ref,
        }
    elif isinstance(event, ImagePush):
        subject = {"image": event.repository, "tag": event.tag}
    elif isinstance(event, Signal | Ignored):
        subject = {"event_type": event.event}
    for skip in routed.skipped:
        log.info(
            "route_skipped",
            endpoint=endpoint,
            target=str(skip.ref),
            cause=str(skip.cause),
            reason=skip.reason,
            **subject,
        )
    log.debug(
        "routed",
        endpoint=endpoint,
        targets=[str(t) for t in routed.targets],
        reason=routed.reason,
        **subject,
    )
