"""The fallback poller inside the running service: a push whose webhook never came is
reconciled, through the same queue, against real git served by `git daemon`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import envtest
from tests.support.gitserver import BareRepo, GitDaemon
from tests.support.running import eventually, kube, running_app

GITREPOS = "/apis/source.toolkit.fluxcd.io/v1/namespaces/{ns}/gitrepositories"


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[tuple[GitDaemon, Path]]:
    served = GitDaemon(tmp_path)
    try:
        yield served, tmp_path
    finally:
        served.close()


async def repo_object(
    server: envtest.KubeTestServer,
    ns: str,
    name: str,
    url: str,
    revision: str,
    annotations: dict[str, str] | None = None,
) -> None:
    await kube(
        server,
        "POST",
        GITREPOS.format(ns=ns),
        body={
            "apiVersion": "source.toolkit.fluxcd.io/v1",
            "kind": "GitRepository",
            "metadata": {"name": name, "annotations": annotations or {}},
            "spec": {"url": url, "interval": "10m", "ref": {"branch": "master"}},
        },
    )
    await kube(
        server,
        "PATCH",
        GITREPOS.format(ns=ns) + f"/{name}/status",
        body={"status": {"artifact": {"revision": f"master@sha1:{revision}"}}},
        content_type="application/merge-patch+json",
    )


async def requested(server: envtest.KubeTestServer, ns: str, name: str) -> str | None:
    obj = await kube(server, "GET", GITREPOS.format(ns=ns) + f"/{name}")
    return (obj["metadata"].get("annotations") or {}).get("reconcile.fluxcd.io/requestedAt")


async def test_missed_push_is_reconciled_by_the_poller_and_counted(
    kube_server: envtest.KubeTestServer, namespace: str, daemon: tuple[GitDaemon, Path]
) -> None:
    served, root = daemon
    moved = BareRepo(root, f"{namespace}-moved")
    fetched = moved.sha("refs/heads/master")
    moved.advance("master")  # pushed, but no webhook arrived
    still = BareRepo(root, f"{namespace}-still")
    opted_out = BareRepo(root, f"{namespace}-optout")
    stale = opted_out.sha("refs/heads/master")
    opted_out.advance("master")
    await repo_object(kube_server, namespace, "moved", served.url(moved.name), fetched)
    await repo_object(
        kube_server, namespace, "unchanged", served.url(still.name), still.sha("refs/heads/master")
    )
    await repo_object(
        kube_server,
        namespace,
        "opted-out",
        served.url(opted_out.name),
        stale,
        annotations={"gitops-receiver.io/poll": "false"},
    )
    async with running_app(
        kubeconfig=kube_server.kubeconfig_path,
        poll={"enabled": True, "interval_s": 1, "concurrency": 4},
    ) as app:
        await eventually(
            lambda: requested(kube_server, namespace, "moved"), check=lambda v: v is not None
        )
        await app.queue.settle()
        assert await requested(kube_server, namespace, "unchanged") is None
        assert await requested(kube_server, namespace, "opted-out") is None
        polled = app.metrics.registry.get_sample_value("gitops_receiver_poll_reconciles_total")
        assert polled is not None and polled >= 1
