"""The real `flux` CLI against gitops-receiver: `flux reconcile receiver` completes.

The CLI (built by scripts from the Go module proxy into ~/.cache/gitops-receiver/flux/<version>/)
annotates the Receiver with `reconcile.fluxcd.io/requestedAt` and waits until
`status.lastHandledReconcileAt` changes; gitops-receiver's status writer must echo it.
Skipped, with the reason, where the CLI has not been built.
"""

from __future__ import annotations

import asyncio
import base64
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from receiver.app import App
from tests import envtest
from tests.support.running import eventually, kube, running_app

RECEIVERS = "/apis/notification.toolkit.fluxcd.io/v1/namespaces/{ns}/receivers"


def flux_cli() -> Path | None:
    root = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "gitops-receiver"
    found = sorted((root / "flux").glob("v*/flux"), reverse=True)
    return next((path for path in found if os.access(path, os.X_OK)), None)


FLUX = flux_cli()
pytestmark = pytest.mark.skipif(FLUX is None, reason="flux CLI not built in the cache")


@pytest.fixture
async def app(kube_server: envtest.KubeTestServer, namespace: str) -> AsyncIterator[App]:
    await kube(
        kube_server,
        "POST",
        f"/api/v1/namespaces/{namespace}/secrets",
        body={"metadata": {"name": "token"}, "data": {"token": base64.b64encode(b"t").decode()}},
    )
    async with running_app(kubeconfig=kube_server.kubeconfig_path) as running:
        yield running


async def flux(kube_server: envtest.KubeTestServer, *args: str) -> tuple[int, str]:
    assert FLUX is not None
    process = await asyncio.create_subprocess_exec(
        str(FLUX),
        *args,
        "--kubeconfig",
        str(kube_server.kubeconfig_path),
        "--timeout",
        "30s",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode is not None
    return process.returncode, output.decode()


async def make_receiver(
    kube_server: envtest.KubeTestServer, namespace: str, name: str, *, suspend: bool
) -> None:
    await kube(
        kube_server,
        "POST",
        RECEIVERS.format(ns=namespace),
        body={
            "apiVersion": "notification.toolkit.fluxcd.io/v1",
            "kind": "Receiver",
            "metadata": {"name": name},
            "spec": {
                "type": "generic",
                "secretRef": {"name": "token"},
                "resources": [{"kind": "GitRepository", "name": "fleet"}],
                "suspend": suspend,
            },
        },
    )


async def test_flux_reconcile_receiver_completes(
    app: App, kube_server: envtest.KubeTestServer, namespace: str
) -> None:
    await make_receiver(kube_server, namespace, "hook", suspend=False)
    await eventually(
        lambda: kube(kube_server, "GET", f"{RECEIVERS.format(ns=namespace)}/hook"),
        check=lambda r: bool(r.get("status", {}).get("webhookPath")),
    )
    code, output = await flux(kube_server, "reconcile", "receiver", "hook", "-n", namespace)
    assert code == 0, output
    assert "Receiver reconciliation completed" in output
    found = await kube(kube_server, "GET", f"{RECEIVERS.format(ns=namespace)}/hook")
    requested = found["metadata"]["annotations"]["reconcile.fluxcd.io/requestedAt"]
    assert found["status"]["lastHandledReconcileAt"] == requested


async def test_flux_refuses_a_suspended_receiver(
    app: App, kube_server: envtest.KubeTestServer, namespace: str
) -> None:
    await make_receiver(kube_server, namespace, "paused", suspend=True)
    code, output = await flux(kube_server, "reconcile", "receiver", "paused", "-n", namespace)
    assert code != 0 and "resource is suspended" in output
