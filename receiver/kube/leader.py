"""Leader election on a `coordination.k8s.io/v1` Lease, as client-go's leaderelection does it.

Every replica serves webhooks; work that must happen once (Receiver status writes, the
poller, commit statuses) runs only while this replica holds the Lease. The rules are
client-go's: a candidate takes the Lease when it is free or when the record it last saw has
not changed for `lease_duration_s` by its own clock (never by comparing clocks across
machines); the holder renews every `retry_period_s`, and stops leading at once when a renew
finds another holder, or when no renew has succeeded for `renew_deadline_s`. On shutdown the
holder releases the Lease (empty holder), so a rolling update hands over in one retry period
instead of a whole lease duration. Writes carry the last seen `resourceVersion`, so two
candidates can never both win the same round.

kubernetes_asyncio ships a `leaderelection` package; it is not used because it runs one term
only (returns when the lease is lost), never releases the lease on shutdown, writes local
wall-clock times with a `Z` suffix, and logs every lost race as a traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import structlog

from receiver.config import LeaderElectionSettings
from receiver.errors import KubeConflict, KubeError, TargetNotFound
from receiver.kube.client import KubeClient

log = structlog.get_logger(__name__)

LEASE_PATH = "/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases"
OnTransition = Callable[[], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class LeaseRecord:
    """What a Lease's spec says about its holder."""

    holder: str
    lease_duration_s: int
    acquire_time: str | None
    renew_time: str | None
    transitions: int
    resource_version: str


def lease_record(lease: dict[str, Any]) -> LeaseRecord:
    spec = lease.get("spec") or {}
    return LeaseRecord(
        holder=str(spec.get("holderIdentity") or ""),
        lease_duration_s=int(spec.get("leaseDurationSeconds") or 0),
        acquire_time=spec.get("acquireTime"),
        renew_time=spec.get("renewTime"),
        transitions=int(spec.get("leaseTransitions") or 0),
        resource_version=str((lease.get("metadata") or {}).get("resourceVersion") or ""),
    )


def micro_time(epoch_s: float) -> str:
    """A Kubernetes MicroTime (RFC 3339, microseconds, UTC)."""
    moment = datetime.datetime.fromtimestamp(epoch_s, tz=datetime.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class LeaderElector:
    """Campaigns for one Lease until `run` is cancelled; `leading` is set while it holds it.

    `on_started` runs when this replica becomes the leader, `on_stopped` when it stops being
    the leader (lost, or shutting down); both are awaited, so the singleton work is stopped
    before the elector campaigns again.
    """

    def __init__(
        self,
        *,
        client: KubeClient,
        settings: LeaderElectionSettings,
        namespace: str,
        identity: str,
        on_started: OnTransition,
        on_stopped: OnTransition,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._client = client
        self._settings = settings
        self._path = LEASE_PATH.format(namespace=namespace)
        self.namespace = namespace
        self.identity = identity
        self._on_started = on_started
        self._on_stopped = on_stopped
        self._clock = clock
        self._wall_clock = wall_clock
        self._random = random.Random()
        self.leading = asyncio.Event()
        self.holder: str | None = None
        self._observed: LeaseRecord | None = None
        self._observed_at = 0.0
        self._last_renew = 0.0

    async def run(self) -> None:
        """Campaign, lead, renew; forever (until cancelled, then release if leading)."""
        try:
            while True:
                held = await self._try_acquire_or_renew()
                now = self._clock()
                if held:
                    self._last_renew = now
                    if not self.leading.is_set():
                        await self._start_leading()
                elif self.leading.is_set() and (
                    self.holder not in (None, self.identity)
                    or now - self._last_renew >= self._settings.renew_deadline_s
                ):
                    await self._stop_leading(reason="lost")
                await asyncio.sleep(self._pause_s())
        finally:
            if self.leading.is_set():
                await asyncio.shield(self._release())

    def _pause_s(self) -> float:
        period = self._settings.retry_period_s
        if self.leading.is_set():
            return period
        return period * (1 + 0.2 * self._random.random())  # followers spread out

    async def _start_leading(self) -> None:
        self.leading.set()
        log.info("leader_elected", identity=self.identity, lease=f"{self.namespace}/{self.name}")
        await self._on_started()

    async def _stop_leading(self, *, reason: str) -> None:
        self.leading.clear()
        log.warning("leader_lost", identity=self.identity, reason=reason, holder=self.holder)
        await self._on_stopped()

    @property
    def name(self) -> str:
        return self._settings.lease_name

    async def _try_acquire_or_renew(self) -> bool:
        now_wall = micro_time(self._wall_clock())
        try:
            current = lease_record(await self._client.get(f"{self._path}/{self.name}"))
        except TargetNotFound:
            return await self._create(now_wall)
        except KubeError as exc:
            log.warning("leader_lease_unreadable", error=str(exc))
            return False
        if self._observed != current:
            self._observed = current
            self._observed_at = self._clock()
        self.holder = current.holder or None
        mine = current.holder == self.identity
        if (
            not mine
            and current.holder
            and self._clock() - self._observed_at < self._settings.lease_duration_s
        ):
            return False
        spec: dict[str, Any] = {
            "holderIdentity": self.identity,
            "leaseDurationSeconds": int(self._settings.lease_duration_s),
            "renewTime": now_wall,
        }
        if not mine:
            spec["acquireTime"] = now_wall
            spec["leaseTransitions"] = current.transitions + (1 if current.holder else 0)
        return await self._write(spec, resource_version=current.resource_version)

    async def _create(self, now_wall: str) -> bool:
        body = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": self.name, "namespace": self.namespace},
            "spec": {
                "holderIdentity": self.identity,
                "leaseDurationSeconds": int(self._settings.lease_duration_s),
                "acquireTime": now_wall,
                "renewTime": now_wall,
                "leaseTransitions": 0,
            },
        }
        try:
            created = await self._client.create(self._path, body)
        except KubeConflict:
            return False  # another candidate created it first
        except KubeError as exc:
            log.warning("leader_lease_not_created", error=str(exc))
            return False
        self._observed = lease_record(created)
        self._observed_at = self._clock()
        self.holder = self.identity
        return True

    async def _write(self, spec: dict[str, Any], *, resource_version: str) -> bool:
        patch = {"metadata": {"resourceVersion": resource_version}, "spec": spec}
        try:
            written = await self._client.merge_patch(f"{self._path}/{self.name}", patch)
        except KubeConflict:
            return False  # someone else wrote it since we read it: they won this round
        except KubeError as exc:
            log.warning("leader_lease_not_renewed", error=str(exc))
            return False
        self._observed = lease_record(written)
        self._observed_at = self._clock()
        self.holder = self.identity
        return True

    async def _release(self) -> None:
        """Give the Lease up so a follower takes over in one retry period."""
        self.leading.clear()
        with contextlib.suppress(KubeError, TimeoutError):
            spec = {
                "holderIdentity": None,
                "leaseDurationSeconds": 1,
                "renewTime": micro_time(self._wall_clock()),
            }
            version = self._observed.resource_version if self._observed else ""
            if await asyncio.wait_for(self._write(spec, resource_version=version), timeout=5):
                log.info("leader_released", identity=self.identity)
        self.holder = None
        await self._on_stopped()
