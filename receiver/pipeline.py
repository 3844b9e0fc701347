"""One delivery through the stages; the only place that knows their order.

Receiver path (`/hook/<digest>`): find the receiver -> refuse if suspended or not Ready ->
verify the raw bytes -> filter on `spec.events` -> parse -> skip duplicates -> queue one
reconcile request per resource.
Discovery path (`/webhooks/<endpoint>`): find the endpoint and its Secret -> verify -> parse
(one delivery may carry several pushes) -> skip duplicates -> route each push through the
discovery indexes -> queue one reconcile request per affected object.
The queue accepts synchronously, so the answer goes out as soon as the requests are queued;
the only await is for OIDC signing keys (`gcr`), which come from a cache.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import structlog

from receiver import logs, oidc_keys
from receiver.config import DiscoveryEndpoint
from receiver.dedupe import DeliveryDeduper
from receiver.errors import (
    AuthenticationFailed,
    ReceiverNotReady,
    UnknownHook,
    UnknownKind,
)
from receiver.events import Event, GitPush, Ignored, ImagePush, ObjectRef, Signal
from receiver.metrics import Metrics
from receiver.objects.resources import Selector, resource_for
from receiver.routing.discovery import Discovery, Routed
from receiver.routing.receivers import ReceiverEntry, ReceiverTable
from receiver.sources import generic_push, registry
from receiver.sources.base import (
    Credentials,
    OidcSettings,
    RawDelivery,
    Source,
    event_allowed,
    parse_events,
    token_matches,
)
from receiver.status.service import StatusService
from receiver.trigger.worker import ReconcileQueue, Target

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Outcome:
    """The answer to a delivery (the facts for its log line are collected in `fields`)."""

    http_status: int
    body: dict[str, Any]


def _answer(fields: dict[str, Any], outcome: str, **body: Any) -> Outcome:
    """A 200 answer; `outcome` is recorded for the delivery's log line and metric."""
    fields["outcome"] = outcome
    return Outcome(200, body)


@dataclass(slots=True)
class Pipeline:
    receivers: ReceiverTable
    queue: ReconcileQueue
    metrics: Metrics
    deduper: DeliveryDeduper
    discovery: Discovery = field(default_factory=lambda: Discovery(with_downstream=False))
    endpoints: dict[str, DiscoveryEndpoint] = field(default_factory=dict)
    key_caches: dict[str, oidc_keys.JwksCache] = field(default_factory=dict)
    oidc_expectations: OidcSettings | None = None
    status: StatusService | None = None
    allow_cross_namespace: bool = True
    preferred_versions: dict[str, str] = field(default_factory=dict)
    monotonic: Callable[[], float] = time.monotonic
    wall_clock: Callable[[], float] = time.time

    async def handle_hook(
        self, path: str, delivery: RawDelivery, *, fields: dict[str, Any]
    ) -> Outcome:
        """Answer one delivery to a Receiver's path; raises `RequestRejected` to refuse it.

        `fields` collects what the delivery's log line reports, also when it is refused.
        """
        entry = self.receivers.lookup(path)
        if entry is None:
            raise UnknownHook("no receiver at this path")
        fields.update(receiver=f"{entry.namespace}/{entry.name}", type=entry.type_name)
        return await self._handle(entry, delivery, fields)

    async def _verify(
        self, source: Source, delivery: RawDelivery, credentials: Credentials
    ) -> None:
        """The source's check; for OIDC types with keys from the cache (refreshed once on an
        unknown key id). Failures are counted by type."""
        cache = self.key_caches.get(source.type_name)
        try:
            if cache is None:
                source.verify(delivery, credentials)
            else:
                with_claims = replace(credentials, oidc=self.oidc_expectations)
                await oidc_keys.verify_with_refresh(
                    source=source, delivery=delivery, credentials=with_claims, cache=cache
                )
        except AuthenticationFailed:
            self.metrics.signature_failures.labels(source.type_name).inc()
            raise

    async def _handle(
        self, entry: ReceiverEntry, delivery: RawDelivery, fields: dict[str, Any]
    ) -> Outcome:
        if entry.suspended:
            raise ReceiverNotReady("receiver is suspended")
        source = registry.get(entry.type_name)
        if not entry.ready or source is None or entry.token is None:
            raise ReceiverNotReady(f"receiver is not ready: {entry.reason}")
        credentials = Credentials(
            token=entry.token, secret_data=entry.secret_data, now_s=self.wall_clock()
        )
        await self._verify(source, delivery, credentials)
        event_type = source.event_name(delivery)
        fields["event_type"] = event_type
        filtered = entry.type_name in registry.EVENT_FILTERED_TYPES
        if filtered and not event_allowed(event_type, entry.events):
            return _answer(
                fields,
                "filtered",
                status="ignored",
                reason=f"event {event_type!r} is not in spec.events",
            )
        event = source.parse(delivery)
        fields["delivery_id"] = event.delivery_id
        if isinstance(event, Ignored):
            return _answer(fields, "ignored", status="ignored", reason=event.reason)
        scope = f"{entry.namespace}/{entry.name}"
        if self.deduper.seen_before(
            scope=scope, delivery_id=event.delivery_id, now_s=self.monotonic()
        ):
            return _answer(
                fields, "duplicate", status="duplicate", reason="delivery already accepted"
            )
        targets = self.receiver_targets(entry)
        self.queue.request_all(targets, reason=f"receiver {scope}")
        if self.status is not None and isinstance(event, GitPush):
            refs = [t for t in targets if isinstance(t, ObjectRef)]
            sources = tuple(t for t in refs if t.kind == "GitRepository")
            direct = [t for t in refs if t.kind in ("Kustomization", "HelmRelease")]
            self.status.on_push(
                event,
                downstream=[*self.discovery.downstream_of(sources), *direct],
                sources=sources,
            )
        fields["targets"] = [str(t) for t in targets]
        return _answer(fields, "accepted", status="accepted", targets=len(targets))

    def receiver_targets(self, entry: ReceiverEntry) -> list[Target]:
        """Every resource of the receiver as a target; refused ones are logged and counted."""
        targets: list[Target] = []
        for ref in entry.resources:
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
                targets.append(
                    Selector(resource.api_version, ref.kind, ref.namespace, ref.match_labels)
                )
            else:
                targets.append(ObjectRef(resource.api_version, ref.kind, ref.namespace, ref.name))
        return targets

    async def handle_discovery(
        self,
        endpoint: str,
        delivery: RawDelivery,
        *,
        fields: dict[str, Any],
        path_token: str | None = None,
    ) -> Outcome:
        """Answer one delivery to `/webhooks/<endpoint>`: route it to the objects it affects.

        Senders that sign nothing (Docker Hub, Quay, ACR) must call `/webhooks/<endpoint>/<token>`:
        the token in the path is their credential, as the secret path is for Flux's Receivers.
        """
        settings = self.endpoints.get(endpoint)
        source = endpoint_source(endpoint)
        if settings is None or source is None:
            raise UnknownHook(f"no discovery endpoint {endpoint!r} is configured")
        fields.update(endpoint=endpoint, type=source.type_name)
        ref = settings.secret_ref
        secret = self.receivers.secret((ref.namespace, ref.name))
        if secret is None or (source.uses_token and ref.key not in secret):
            raise ReceiverNotReady(
                f"endpoint secret {ref.namespace}/{ref.name} (key {ref.key!r}) not found"
            )
        token = secret.get(ref.key, b"")
        if source.authenticates_payload and path_token is not None:
            raise UnknownHook(f"/webhooks/{endpoint} takes no token in its path")
        if not source.authenticates_payload and (
            path_token is None or not token_matches(expected=token, given=path_token)
        ):
            self.metrics.signature_failures.labels(source.type_name).inc()
            raise AuthenticationFailed(
                f"{source.type_name} signs nothing: call /webhooks/{endpoint}/<token> with the "
                "endpoint Secret's token"
            )
        credentials = Credentials(token=token, secret_data=secret, now_s=self.wall_clock())
        await self._verify(source, delivery, credentials)
        fields["event_type"] = source.event_name(delivery)
        events = parse_events(source, delivery)
        fields["delivery_id"] = events[0].delivery_id
        # Only pushes route: a ping or any other event (a Signal here) asks for nothing.
        if all(isinstance(event, Ignored | Signal) for event in events):
            reason = "; ".join(dict.fromkeys(_ignored_reason(event) for event in events))
            return _answer(fields, "ignored", status="ignored", reason=reason)
        if self.deduper.seen_before(
            scope=f"webhooks/{endpoint}", delivery_id=events[0].delivery_id, now_s=self.monotonic()
        ):
            return _answer(
                fields, "duplicate", status="duplicate", reason="delivery already accepted"
            )
        targets: dict[ObjectRef, None] = {}
        skipped = 0
        reasons: list[str] = []
        routes = [(event, self.discovery.route(event)) for event in events]
        for event, routed in routes:
            targets.update(dict.fromkeys(routed.targets))
            skipped += len(routed.skipped)
            _log_route(event, routed, endpoint=endpoint)
            if routed.reason and not routed.targets:
                reasons.append(routed.reason)
        self.queue.request_all(list(targets), reason=f"webhooks/{endpoint}")
        if self.status is not None:
            for event, routed in routes:
                if isinstance(event, GitPush) and routed.sources:
                    self.status.on_push(
                        event,
                        downstream=self.discovery.downstream_of(routed.sources),
                        sources=routed.sources,
                    )
        fields["targets"] = [str(t) for t in targets]
        extra = {"reason": "; ".join(dict.fromkeys(reasons))} if not targets and reasons else {}
        return _answer(
            fields,
            "accepted" if targets else "unrouted",
            status="accepted",
            targets=len(targets),
            skipped=skipped,
            **extra,
        )


def endpoint_source(endpoint: str) -> Source | None:
    """The source behind `/webhooks/<endpoint>`: `generic` is gitops-receiver's own format."""
    return generic_push.SOURCE if endpoint == "generic" else registry.get(endpoint)


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
