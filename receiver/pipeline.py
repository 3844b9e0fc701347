"""One delivery through the stages; the only place that knows their order.

Receiver path (`/hook/<digest>`): find the receiver -> refuse if suspended or not Ready ->
verify the raw bytes -> filter on `spec.events` -> parse -> skip duplicates -> queue one
reconcile request per resource. No I/O here: the queue accepts synchronously, so the answer
goes out as soon as the requests are queued.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import structlog

from receiver.dedupe import DeliveryDeduper
from receiver.errors import (
    AuthenticationFailed,
    ReceiverNotReady,
    UnknownHook,
)
from receiver.events import Ignored, ObjectRef
from receiver.kube.patching import Selector
from receiver.kube.resources import UnknownKind, resource_for
from receiver.metrics import Metrics
from receiver.routing.receivers import ReceiverEntry, ReceiverTable
from receiver.sources import registry
from receiver.sources.base import Credentials, RawDelivery, event_allowed
from receiver.trigger.worker import ReconcileQueue, Target

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Outcome:
    """The answer to a delivery and the facts its one log line reports."""

    http_status: int
    body: dict[str, Any]
    fields: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class Pipeline:
    receivers: ReceiverTable
    queue: ReconcileQueue
    metrics: Metrics
    deduper: DeliveryDeduper
    allow_cross_namespace: bool = True
    preferred_versions: dict[str, str] = field(default_factory=dict)
    monotonic: Callable[[], float] = time.monotonic
    wall_clock: Callable[[], float] = time.time

    def handle_hook(self, path: str, delivery: RawDelivery, *, fields: dict[str, Any]) -> Outcome:
        """Answer one delivery to a Receiver's path; raises `RequestRejected` to refuse it.

        `fields` collects what the delivery's log line reports, also when it is refused.
        """
        entry = self.receivers.lookup(path)
        if entry is None:
            raise UnknownHook("no receiver at this path")
        fields.update(receiver=f"{entry.namespace}/{entry.name}", type=entry.type_name)
        return self._handle(entry, delivery, fields)

    def _handle(
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
        try:
            source.verify(delivery, credentials)
        except AuthenticationFailed:
            self.metrics.signature_failures.labels(entry.type_name).inc()
            raise
        event_type = source.event_name(delivery)
        fields["event_type"] = event_type
        if not event_allowed(event_type, entry.events):
            return Outcome(
                200,
                {"status": "ignored", "reason": f"event {event_type!r} is not in spec.events"},
                {**fields, "outcome": "filtered"},
            )
        event = source.parse(delivery)
        fields["delivery_id"] = event.delivery_id
        if isinstance(event, Ignored):
            return Outcome(
                200, {"status": "ignored", "reason": event.reason}, {**fields, "outcome": "ignored"}
            )
        scope = f"{entry.namespace}/{entry.name}"
        if self.deduper.seen_before(
            scope=scope, delivery_id=event.delivery_id, now_s=self.monotonic()
        ):
            return Outcome(
                200,
                {"status": "duplicate", "reason": "delivery already accepted"},
                {**fields, "outcome": "duplicate"},
            )
        targets = self.receiver_targets(entry)
        self.queue.request_all(targets, reason=f"receiver {scope}")
        return Outcome(
            200,
            {"status": "accepted", "targets": len(targets)},
            {**fields, "outcome": "accepted", "targets": [str(t) for t in targets]},
        )

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
