"""The commands a newcomer runs: `serve` (cluster, dry-run, fallback), `send`, SIGTERM drain,
start-up errors as one line, and no secret in any log line, answer or metric."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import envtest
from tests.support.running import kube
from tests.support.served import CLI, ROOT, Served, serve

EXAMPLE_PATH = "/hook/" + hashlib.sha256(b"example-tokengithub-receiverflux-system").hexdigest()


def send(url: str, secret: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            *CLI,
            "send",
            "github",
            "--url",
            url,
            "--secret",
            secret,
            "--repo",
            "https://github.com/example/fleet",
            *extra,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )


def log_lines(output: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


@pytest.fixture
def dry_run() -> Iterator[Served]:
    served = serve("--inventory", "config/examples")
    try:
        served.wait_ready()
        yield served
    finally:
        if served.process.poll() is None:
            served.stop()


def test_dry_run_session_logs_the_patch_it_would_send(dry_run: Served) -> None:
    result = send(dry_run.url("webhook", EXAMPLE_PATH), "example-token")
    assert result.returncode == 0 and result.stdout.startswith("HTTP 200"), result
    wrong = send(dry_run.url("webhook", EXAMPLE_PATH), "not-the-token")
    assert wrong.returncode == 1 and "HTTP 401" in wrong.stdout
    metrics = dry_run.get("metrics", "/metrics")[1]
    assert 'gitops_receiver_deliveries_total{outcome="accepted",source="github"} 1.0' in metrics
    code, output = dry_run.stop()
    assert code == 0
    lines = log_lines(output)
    assert lines[0]["event"] == "mode" and lines[0]["mode"] == "dry-run"
    patches = [line for line in lines if line["event"] == "dry_run_patch"]
    assert [p["target"] for p in patches] == ["GitRepository/flux-system/fleet"]
    deliveries = [line for line in lines if line["event"] == "delivery"]
    assert [d["status"] for d in deliveries] == [200, 401]
    assert "example-token" not in output and "not-the-token" not in output + metrics


def test_fallback_inventory_says_why_it_chose_dry_run(tmp_path: Path) -> None:
    served = serve(
        "--fallback-inventory",
        "config/examples",
        env={"KUBECONFIG": str(tmp_path / "missing-kubeconfig")},
    )
    served.wait_ready()
    code, output = served.stop()
    first = log_lines(output)[0]
    assert code == 0 and first["mode"] == "dry-run" and "missing-kubeconfig" in str(first["reason"])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--kubeconfig", "/nonexistent/kubeconfig"],
            "cannot load kubeconfig /nonexistent/kubeconfig",
        ),
        (["--listen", "not-an-address"], "invalid setting listen"),
        (
            ["--inventory", "/nonexistent/folder"],
            "inventory folder /nonexistent/folder does not exist",
        ),
    ],
)
def test_start_up_errors_are_one_line_and_exit_2(args: list[str], message: str) -> None:
    result = subprocess.run(
        [*CLI, "serve", *args], cwd=ROOT, capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and message in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


async def test_cluster_mode_serves_receivers_and_drains_on_sigterm(
    kube_server: envtest.KubeTestServer, namespace: str
) -> None:
    token = "cli-e2e-token"
    await kube(
        kube_server,
        "POST",
        f"/api/v1/namespaces/{namespace}/secrets",
        body={
            "metadata": {"name": "tok"},
            "data": {"token": base64.b64encode(token.encode()).decode()},
        },
    )
    await kube(
        kube_server,
        "POST",
        f"/apis/source.toolkit.fluxcd.io/v1/namespaces/{namespace}/gitrepositories",
        body={
            "apiVersion": "source.toolkit.fluxcd.io/v1",
            "kind": "GitRepository",
            "metadata": {"name": "fleet"},
            "spec": {"url": "https://github.com/example/fleet", "interval": "10m"},
        },
    )
    await kube(
        kube_server,
        "POST",
        f"/apis/notification.toolkit.fluxcd.io/v1/namespaces/{namespace}/receivers",
        body={
            "apiVersion": "notification.toolkit.fluxcd.io/v1",
            "kind": "Receiver",
            "metadata": {"name": "gh"},
            "spec": {
                "type": "github",
                "secretRef": {"name": "tok"},
                "resources": [{"kind": "GitRepository", "name": "fleet"}],
            },
        },
    )
    served = serve("--kubeconfig", str(kube_server.kubeconfig_path))
    try:
        served.wait_ready()
        path = "/hook/" + hashlib.sha256(f"{token}gh{namespace}".encode()).hexdigest()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            result = send(served.url("webhook", path), token)
            if result.stdout.startswith("HTTP 200"):
                break
            await asyncio.sleep(0.2)
        assert result.stdout.startswith('HTTP 200 {"status": "accepted", "targets": 1}'), result
    finally:
        code, output = served.stop()
    assert code == 0
    lines = log_lines(output)
    assert lines[0]["mode"] == "cluster"
    assert any(line["event"] == "reconcile_requested" for line in lines)
    assert lines[-1]["event"] == "stopped"
    assert token not in output
    repo = await kube(
        kube_server,
        "GET",
        f"/apis/source.toolkit.fluxcd.io/v1/namespaces/{namespace}/gitrepositories/fleet",
    )
    assert "reconcile.fluxcd.io/requestedAt" in repo["metadata"]["annotations"]
