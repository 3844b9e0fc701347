"""The fallback poller inside the running service: a push whose webhook never came is
reconciled, through the same queue, against real git served over smart HTTP (the real
GitRepository CRD refuses `git://`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests import envtest
from tests.support import flux
from tests.support.gitserver import BareRepo, GitHttpServer
from tests.support.running import eventually, kube, running_app

GITREPOS = "/apis/source.toolkit.fluxcd.io/v1/namespaces/{ns}/gitrepositories"


@pytest.fixture
async def daemon(tmp_path: Path) -> AsyncIterator[tuple[GitHttpServer, Path]]:
    served = GitHttpServer(root=tmp_path)
    await served.start()
    try:
        yield served, tmp_path
    finally:
        await served.close()


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
        body={"status": {"artifact": flux.artifact(revision=f"master@sha1:{revision}", name=name)}},
        content_type="application/merge-patch+json",
    )


async def requested(server: envtest.KubeTestServer, ns: str, name: str) -> str | None:
    obj = await kube(server, "GET", GITREPOS.format(ns=ns) + f"/{name}")
    return (obj["metadata"].get("annotations") or {}).get("reconcile.fluxcd.io/requestedAt")


async def test_missed_push_is_reconciled_by_the_poller_and_counted(
    kube_server: envtest.KubeTestServer, namespace: str, daemon: tuple[GitHttpServer, Path]
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
        poll={"enabled": True, "interval_s": 1, "concurrency": 4, "allow_insecure_http": True},
    ) as app:
        await eventually(
            lambda: requested(kube_server, namespace, "moved"), check=lambda v: v is not None
        )
        await app.queue.settle()
        assert await requested(kube_server, namespace, "unchanged") is None
        assert await requested(kube_server, namespace, "opted-out") is None
        polled = app.metrics.registry.get_sample_value("gitops_receiver_poll_reconciles_total")
        assert polled is not None and polled >= 1
