"""Leader election on a real Lease: one leader at a time, takeover after a crash within the
lease duration, immediate hand-over on release, and a lost lease stopping the work at once."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest

from receiver.config import LeaderElectionSettings
from receiver.kube.client import KubeClient
from receiver.kube.leader import LeaderElector
from tests import envtest
from tests.support.running import eventually, kube

# Short, but with client-go's proportions (15 s / 10 s / 2 s scaled down).
FAST = LeaderElectionSettings(lease_duration_s=4.0, renew_deadline_s=3.0, retry_period_s=0.5)


@dataclass
class Candidate:
    elector: LeaderElector
    task: asyncio.Task[None]
    client: KubeClient
    terms: list[tuple[str, float]] = field(default_factory=list)


@contextlib.asynccontextmanager
async def candidates(
    server: envtest.KubeTestServer, namespace: str, count: int
) -> AsyncIterator[list[Candidate]]:
    made: list[Candidate] = []
    for number in range(count):
        client = await KubeClient.connect(kubeconfig=server.kubeconfig_path)
        terms: list[tuple[str, float]] = []

        async def started(terms: list[tuple[str, float]] = terms) -> None:
            terms.append(("started", time.monotonic()))

        async def stopped(terms: list[tuple[str, float]] = terms) -> None:
            terms.append(("stopped", time.monotonic()))

        elector = LeaderElector(
            client=client,
            settings=FAST,
            namespace=namespace,
            identity=f"replica-{number}",
            on_started=started,
            on_stopped=stopped,
        )
        made.append(Candidate(elector, asyncio.create_task(elector.run()), client, terms))
    try:
        yield made
    finally:
        for candidate in made:
            candidate.task.cancel()
        await asyncio.gather(*(c.task for c in made), return_exceptions=True)
        for candidate in made:
            await candidate.client.close()


def leaders(group: list[Candidate]) -> list[str]:
    return [c.elector.identity for c in group if c.elector.leading.is_set()]


async def lease_holder(server: envtest.KubeTestServer, namespace: str) -> str | None:
    lease = await kube(
        server,
        "GET",
        f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases/{FAST.lease_name}",
    )
    holder: str | None = lease["spec"].get("holderIdentity")
    return holder


@pytest.mark.parametrize("count", [2, 3])
async def test_one_leader_at_a_time_and_takeover_after_a_crash(
    kube_server: envtest.KubeTestServer, namespace: str, count: int
) -> None:
    async with candidates(kube_server, namespace, count) as group:
        await eventually(lambda: asyncio.sleep(0, leaders(group)), check=lambda found: found != [])
        # Over several renew periods there is never more than one leader.
        for _ in range(10):
            assert len(leaders(group)) == 1
            await asyncio.sleep(FAST.retry_period_s / 2)
        first = next(c for c in group if c.elector.leading.is_set())
        assert await lease_holder(kube_server, namespace) == first.elector.identity

        # A crash: the leader stops renewing and never releases the Lease (as after SIGKILL;
        # tests/e2e/test_replicas_e2e.py kills real processes).
        first.elector._release = _never  # type: ignore[method-assign]
        first.task.cancel()
        crashed_at = time.monotonic()
        rest = [c for c in group if c is not first]
        await eventually(
            lambda: asyncio.sleep(0, leaders(rest)), check=lambda found: len(found) == 1
        )
        takeover_s = time.monotonic() - crashed_at
        print(f"takeover after a crash with {count} replicas: {takeover_s:.2f} s")
        # Not before the lease runs out (counted from the last renew the follower saw, at most
        # about one retry period before the crash), and with room for a loaded machine after.
        earliest = FAST.lease_duration_s - 2 * FAST.retry_period_s
        assert earliest <= takeover_s <= FAST.lease_duration_s + 5
        assert await lease_holder(kube_server, namespace) == leaders(rest)[0]


async def _never() -> None:
    return None


async def test_release_on_shutdown_hands_over_within_a_retry_period(
    kube_server: envtest.KubeTestServer, namespace: str
) -> None:
    async with candidates(kube_server, namespace, 2) as group:
        await eventually(lambda: asyncio.sleep(0, leaders(group)), check=lambda found: found != [])
        first = next(c for c in group if c.elector.leading.is_set())
        other = next(c for c in group if c is not first)
        first.task.cancel()
        await asyncio.gather(first.task, return_exceptions=True)
        released_at = time.monotonic()
        assert first.terms[-1][0] == "stopped"
        await eventually(lambda: asyncio.sleep(0, other.elector.leading.is_set()), check=bool)
        assert time.monotonic() - released_at < FAST.lease_duration_s * 0.9
        assert [kind for kind, _ in other.terms] == ["started"]


async def test_a_lease_taken_by_another_holder_stops_the_work_at_once(
    kube_server: envtest.KubeTestServer, namespace: str
) -> None:
    async with candidates(kube_server, namespace, 1) as group:
        only = group[0]
        await eventually(lambda: asyncio.sleep(0, only.elector.leading.is_set()), check=bool)
        # An operator (or a split-brain peer) overwrites the Lease with another holder.
        await kube(
            kube_server,
            "PATCH",
            f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases/{FAST.lease_name}",
            body={"spec": {"holderIdentity": "someone-else"}},
            content_type="application/merge-patch+json",
        )
        taken_at = time.monotonic()
        await eventually(
            lambda: asyncio.sleep(0, only.elector.leading.is_set()), check=lambda held: not held
        )
        # Stopped at the next renew, well before the renew deadline would expire.
        assert time.monotonic() - taken_at < FAST.renew_deadline_s
        assert [kind for kind, _ in only.terms] == ["started", "stopped"]
