"""Kubernetes Events for reconcile requests, so the cluster itself says why an object reconciled.

Each reconcile patch that lands becomes one core/v1 Event on the patched object (reason
`ReconcileRequested`, type Normal, the message naming the delivery's source, repository, ref and
commit). core/v1 is what `kubectl describe` and `flux events` list (field selectors on
`involvedObject.kind/name`, plus `involvedObject.uid` for describe, taken from the patch's
answer), and the same objects are served as events.k8s.io/v1. With several replicas the Events
are the cluster-wide story: each names the replica that sent the patch (`reportingInstance`).

Edge: `record` only queues (never blocks a patch worker); a few workers POST the Events. Events
are best effort: a full queue or a refused POST is counted and logged, never retried for long.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import structlog

from receiver.errors import KubeError, KubeUnavailable
from receiver.events import ObjectRef
from receiver.kube.client import KubeClient
from receiver.metrics import Metrics
from receiver.trigger.pending import requested_at

log = structlog.get_logger(__name__)

REASON = "ReconcileRequested"
COMPONENT = "gitops-receiver"
_WORKERS = 4
_ATTEMPTS = 3
_RETRY_S = 0.5
# Kubernetes names are at most 253 characters; the server appends 5 to generateName.
_MAX_PREFIX = 200


def event_body(
    target: ObjectRef, *, uid: str | None, message: str, instance: str, now_ns: int
) -> dict[str, Any]:
    """The core/v1 Event for one reconcile request on `target`."""
    stamp = requested_at(now_ns).split(".")[0] + "Z"
    involved: dict[str, str] = {
        "apiVersion": target.api_version,
        "kind": target.kind,
        "namespace": target.namespace,
        "name": target.name,
    }
    if uid:
        involved["uid"] = uid
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {
            "generateName": f"{target.name[:_MAX_PREFIX]}.",
            "namespace": target.namespace,
        },
        "involvedObject": involved,
        "reason": REASON,
        "message": message,
        "type": "Normal",
        "action": "Reconcile",
        "source": {"component": COMPONENT},
        "reportingComponent": COMPONENT,
        "reportingInstance": instance,
        "firstTimestamp": stamp,
        "lastTimestamp": stamp,
        "count": 1,
    }


class EventRecorder:
    """Queues Events and POSTs them with a few workers; `stop` sends what is queued (bounded)."""

    def __init__(
        self,
        *,
        client: KubeClient,
        instance: str,
        metrics: Metrics,
        capacity: int = 10_000,
        clock_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        self._client = client
        self._instance = instance
        self._metrics = metrics
        self._clock_ns = clock_ns
        self._queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=capacity)
        self._workers: list[asyncio.Task[None]] = []

    def record(self, target: ObjectRef, *, uid: str | None, message: str) -> None:
        body = event_body(
            target, uid=uid, message=message, instance=self._instance, now_ns=self._clock_ns()
        )
        try:
            self._queue.put_nowait(body)
        except asyncio.QueueFull:
            self._metrics.kube_events.labels("dropped").inc()

    def start(self) -> None:
        for index in range(_WORKERS):
            self._workers.append(asyncio.create_task(self._work(), name=f"event-recorder-{index}"))

    async def settle(self) -> None:
        """Wait until every queued Event has been sent or given up (for tests and shutdown)."""
        await self._queue.join()

    async def stop(self, *, timeout_s: float = 5.0) -> None:
        try:
            await asyncio.wait_for(self._queue.join(), timeout=timeout_s)
        except TimeoutError:
            self._metrics.kube_events.labels("dropped").inc(self._queue.qsize())
        for task in self._workers:
            task.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)
        self._workers.clear()

    async def _work(self) -> None:
        while True:
            body = await self._queue.get()
            try:
                await self._send(body)
            finally:
                self._queue.task_done()

    async def _send(self, body: dict[str, Any]) -> None:
        namespace = body["metadata"]["namespace"]
        target = "{kind}/{namespace}/{name}".format(**body["involvedObject"])
        for attempt in range(1, _ATTEMPTS + 1):
            try:
                await self._client.create(f"/api/v1/namespaces/{namespace}/events", body)
                self._metrics.kube_events.labels("created").inc()
                return
            except KubeUnavailable as exc:
                if attempt == _ATTEMPTS:
                    self._metrics.kube_events.labels("failed").inc()
                    log.warning("event_failed", target=target, error=str(exc))
                    return
                await asyncio.sleep(_RETRY_S * attempt)
            except KubeError as exc:
                self._metrics.kube_events.labels("failed").inc()
                log.warning("event_refused", target=target, error=str(exc))
                return
