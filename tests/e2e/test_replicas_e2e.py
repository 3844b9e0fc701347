"""Several replicas of `gitops-receiver serve` (real processes) on one real API server.

One leader at a time; SIGKILL of the leader hands the Lease to a follower within the lease
duration (the takeover time is measured and printed); pushes sent to followers before, during
and after the takeover each end in exactly one `pending` and one final status on the emulated
GitLab; a process killed while a status is pending posts the final status after its restart,
and nothing twice; the poller runs on the leader only.

Flux is played by the test: it writes the Kustomization's status through the status
subresource, as kustomize-controller does.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import re
import time
import urllib.request
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import yaml

from receiver import samples
from tests import envtest
from tests.support.forges import EmulatedGitLab
from tests.support.running import eventually, kube
from tests.support.served import Served, serve

WEBHOOK_TOKEN = "replicas-webhook-token"
GITLAB_TOKEN = "glpat-replicas-status-token"
REPO = "https://gitlab.test/group/fleet.git"
PROJECT = "group/fleet"
LEASE = {"lease_duration_s": 4, "renew_deadline_s": 3, "retry_period_s": 0.5}
SOURCE = "/apis/source.toolkit.fluxcd.io/v1"
KUSTOMIZE = "/apis/kustomize.toolkit.fluxcd.io/v1"
STATUS_NAME = "flux/e2e/Kustomization/{namespace}/apps"


def sha(n: int) -> str:
    return f"{n:02x}" * 20


@pytest.fixture
async def gitlab() -> AsyncIterator[EmulatedGitLab]:
    forge = EmulatedGitLab(token=GITLAB_TOKEN, projects={PROJECT})
    await forge.start()
    try:
        yield forge
    finally:
        await forge.close()


@pytest.fixture
async def fleet(kube_server: envtest.KubeTestServer, namespace: str) -> str:
    """The Secret, GitRepository and Kustomization the replicas serve; returns the namespace."""
    tokens = {"webhook": WEBHOOK_TOKEN, "gitlab": GITLAB_TOKEN}
    await kube(
        kube_server,
        "POST",
        f"/api/v1/namespaces/{namespace}/secrets",
        body={
            "metadata": {"name": "tokens"},
            "data": {k: base64.b64encode(v.encode()).decode() for k, v in tokens.items()},
        },
    )
    await kube(
        kube_server,
        "POST",
        f"{SOURCE}/namespaces/{namespace}/gitrepositories",
        body={
            "apiVersion": "source.toolkit.fluxcd.io/v1",
            "kind": "GitRepository",
            "metadata": {"name": "fleet"},
            "spec": {"interval": "1m", "url": REPO, "ref": {"branch": "main"}},
        },
    )
    await kube(
        kube_server,
        "POST",
        f"{KUSTOMIZE}/namespaces/{namespace}/kustomizations",
        body={
            "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
            "kind": "Kustomization",
            "metadata": {"name": "apps"},
            "spec": {
                "interval": "10m",
                "path": "./",
                "prune": True,
                "sourceRef": {"kind": "GitRepository", "name": "fleet"},
            },
        },
    )
    return namespace


def write_config(
    tmp_path: Path, *, namespace: str, forge: EmulatedGitLab, lease_name: str, poll: bool = False
) -> Path:
    secret = {"namespace": namespace, "name": "tokens"}
    config = {
        "discovery": {"endpoints": {"gitlab": {"secret_ref": {**secret, "key": "webhook"}}}},
        "status": {
            "cluster": "e2e",
            "forges": [
                {
                    "kind": "gitlab",
                    "host": "gitlab.test",
                    "api_base_url": forge.base_url,
                    "token_secret_ref": {**secret, "key": "gitlab"},
                }
            ],
        },
        "leader_election": {"namespace": namespace, "lease_name": lease_name, **LEASE},
        "poll": {"enabled": poll, "interval_s": 1, "allow_insecure_http": True},
    }
    path = tmp_path / f"{lease_name}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@contextlib.contextmanager
def replicas(
    server: envtest.KubeTestServer, config: Path, count: int
) -> Iterator[dict[str, Served]]:
    started: dict[str, Served] = {}
    try:
        for number in range(count):
            name = f"replica-{number}"
            started[name] = serve(
                "--kubeconfig",
                str(server.kubeconfig_path),
                "--config",
                str(config),
                env={"POD_NAME": name},
            )
        for served in started.values():
            served.wait_ready()
        yield started
    finally:
        for served in started.values():
            if served.process.poll() is None:
                served.stop()


async def holder_identity(server: envtest.KubeTestServer, namespace: str, lease: str) -> str | None:
    """The Lease's holder as written: `<POD_NAME>_<random per process>`."""
    status, body = await asyncio.to_thread(
        server.request, "GET", f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases/{lease}"
    )
    identity = body["spec"].get("holderIdentity") if status == 200 else None
    return str(identity) if identity else None


async def holder(server: envtest.KubeTestServer, namespace: str, lease: str) -> str | None:
    """The replica (POD_NAME) holding the Lease."""
    identity = await holder_identity(server, namespace, lease)
    return identity.rpartition("_")[0] if identity else None


def push(served: Served, *, after: str, before: str) -> tuple[int, str]:
    body = samples.push_body(
        kind="gitlab", repo_url=REPO, ref="refs/heads/main", after=after, changed=[]
    )
    body["before"] = before
    raw = samples.encode(body)
    headers = samples.signed_delivery(
        kind="gitlab",
        secret=WEBHOOK_TOKEN,
        body=raw,
        event="Push Hook",
        delivery_id=str(uuid.uuid4()),
    )
    request = urllib.request.Request(
        served.url("webhook", "/webhooks/gitlab"), data=raw, headers=headers, method="POST"
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status, response.read().decode()


async def flux_applies(server: envtest.KubeTestServer, namespace: str, commit: str) -> None:
    """kustomize-controller's status after applying `commit`."""
    revision = f"main@sha1:{commit}"
    await kube(
        server,
        "PATCH",
        f"{KUSTOMIZE}/namespaces/{namespace}/kustomizations/apps/status",
        body={
            "status": {
                "observedGeneration": 1,
                "lastAppliedRevision": revision,
                "lastAttemptedRevision": revision,
                "conditions": [
                    {
                        "type": "Ready",
                        "status": "True",
                        "reason": "ReconciliationSucceeded",
                        "message": f"Applied revision: {revision}",
                        "lastTransitionTime": "2026-11-30T00:00:00Z",
                    }
                ],
            }
        },
        content_type="application/merge-patch+json",
    )


def states_of(forge: EmulatedGitLab, commit: str) -> list[str]:
    return [p.state for p in forge.posted if p.sha == commit]


async def journey_ends(forge: EmulatedGitLab, commit: str) -> list[str]:
    return await eventually(
        lambda: asyncio.sleep(0, states_of(forge, commit)),
        check=lambda states: states[-1:] == ["success"],
        timeout_s=30,
    )


async def test_takeover_after_sigkill_keeps_every_status_exactly_once(
    kube_server: envtest.KubeTestServer, fleet: str, gitlab: EmulatedGitLab, tmp_path: Path
) -> None:
    namespace = fleet
    lease = f"leader-{uuid.uuid4().hex[:8]}"
    config = write_config(tmp_path, namespace=namespace, forge=gitlab, lease_name=lease)
    with replicas(kube_server, config, 3) as group:
        leader = await eventually(
            lambda: holder(kube_server, namespace, lease), check=lambda h: h in group
        )
        # One leader at a time, while it stays.
        for _ in range(6):
            assert await holder(kube_server, namespace, lease) == leader
            await asyncio.sleep(0.3)
        followers = [name for name in group if name != leader]

        # A push to a follower: the leader posts pending, then the outcome.
        status, text = push(group[followers[0]], after=sha(1), before=sha(0))
        assert status == 200 and '"accepted"' in text, text
        await eventually(lambda: asyncio.sleep(0, states_of(gitlab, sha(1))), check=bool)
        await flux_applies(kube_server, namespace, sha(1))
        assert await journey_ends(gitlab, sha(1)) == ["pending", "success"]

        # SIGKILL the leader, and push to a follower while the Lease is still held by the dead.
        group[leader].kill()
        killed_at = time.monotonic()
        status, _ = push(group[followers[0]], after=sha(2), before=sha(1))
        assert status == 200
        new_leader = await eventually(
            lambda: holder(kube_server, namespace, lease),
            check=lambda h: h in followers,
            timeout_s=3 * LEASE["lease_duration_s"],
        )
        takeover_s = time.monotonic() - killed_at
        print(f"\ntakeover after SIGKILL of the leader (3 replicas): {takeover_s:.2f} s")
        assert takeover_s <= LEASE["lease_duration_s"] + 2 * LEASE["retry_period_s"] + 1
        await eventually(lambda: asyncio.sleep(0, states_of(gitlab, sha(2))), check=bool)
        await flux_applies(kube_server, namespace, sha(2))
        assert await journey_ends(gitlab, sha(2)) == ["pending", "success"]

        # After the takeover, a push to the replica that is still a follower.
        follower = next(name for name in followers if name != new_leader)
        status, _ = push(group[follower], after=sha(3), before=sha(2))
        assert status == 200
        await eventually(lambda: asyncio.sleep(0, states_of(gitlab, sha(3))), check=bool)
        await flux_applies(kube_server, namespace, sha(3))
        assert await journey_ends(gitlab, sha(3)) == ["pending", "success"]

        await asyncio.sleep(1.0)  # room for a wrong duplicate to arrive
        name = STATUS_NAME.format(namespace=namespace)
        posted = [(p.sha, p.state) for p in gitlab.posted if p.name == name]
        assert sorted(posted) == sorted(
            [(sha(n), state) for n in (1, 2, 3) for state in ("pending", "success")]
        )


async def test_a_restart_with_a_pending_status_posts_the_outcome_once(
    kube_server: envtest.KubeTestServer, fleet: str, gitlab: EmulatedGitLab, tmp_path: Path
) -> None:
    namespace = fleet
    lease = f"leader-{uuid.uuid4().hex[:8]}"
    config = write_config(tmp_path, namespace=namespace, forge=gitlab, lease_name=lease)

    # Killed with a commit pending; restarted before Flux applies it: the new process learns
    # the request from the GitRepository, finds `pending` on the forge, and posts only the end.
    with replicas(kube_server, config, 1) as group:
        assert push(group["replica-0"], after=sha(7), before=sha(6))[0] == 200
        await eventually(lambda: asyncio.sleep(0, states_of(gitlab, sha(7))), check=bool)
        dead = await holder_identity(kube_server, namespace, lease)
        group["replica-0"].kill()
    with replicas(kube_server, config, 1) as group:
        # The dead process's Lease runs out, then the new process leads and recovers.
        await eventually(
            lambda: holder_identity(kube_server, namespace, lease),
            check=lambda identity: identity not in (None, dead),
            timeout_s=3 * LEASE["lease_duration_s"],
        )
        await asyncio.sleep(1.0)
        await flux_applies(kube_server, namespace, sha(7))
        assert await journey_ends(gitlab, sha(7)) == ["pending", "success"]
        logged = group["replica-0"].stop()[1]
    lines = [json.loads(line) for line in logged.splitlines() if line.startswith("{")]
    events = [(line["event"], line.get("state")) for line in lines if "status" in line["event"]]
    assert ("status_already_on_forge", "pending") in events, events

    # Killed with a commit pending; Flux applies it while no replica runs: the restarted
    # process posts the outcome, once.
    with replicas(kube_server, config, 1) as group:
        assert push(group["replica-0"], after=sha(8), before=sha(7))[0] == 200
        await eventually(lambda: asyncio.sleep(0, states_of(gitlab, sha(8))), check=bool)
        group["replica-0"].kill()
    await flux_applies(kube_server, namespace, sha(8))
    with replicas(kube_server, config, 1):
        assert await journey_ends(gitlab, sha(8)) == ["pending", "success"]
        await asyncio.sleep(1.0)  # room for a wrong duplicate to arrive
    assert states_of(gitlab, sha(7)) == ["pending", "success"]
    assert states_of(gitlab, sha(8)) == ["pending", "success"]


def poll_count(served: Served) -> float:
    metrics = served.get("metrics", "/metrics")[1]
    found = re.findall(r"^gitops_receiver_polls_total\{[^}]*\} ([0-9.e+]+)$", metrics, re.M)
    return sum(float(value) for value in found)


async def test_the_poller_runs_on_the_leader_only(
    kube_server: envtest.KubeTestServer, fleet: str, gitlab: EmulatedGitLab, tmp_path: Path
) -> None:
    namespace = fleet
    lease = f"leader-{uuid.uuid4().hex[:8]}"
    config = write_config(tmp_path, namespace=namespace, forge=gitlab, lease_name=lease, poll=True)
    with replicas(kube_server, config, 2) as group:
        leader = await eventually(
            lambda: holder(kube_server, namespace, lease), check=lambda h: h in group
        )
        await eventually(
            lambda: asyncio.sleep(0, poll_count(group[leader])), check=lambda n: n >= 1
        )
        follower = next(name for name in group if name != leader)
        await asyncio.sleep(2.0)  # two more intervals: the follower still polls nothing
        assert poll_count(group[follower]) == 0
        # The follower takes over the polling when the leader goes away (SIGTERM: released).
        group[leader].stop()
        await eventually(
            lambda: asyncio.sleep(0, poll_count(group[follower])), check=lambda n: n >= 1
        )
