"""The servers under test, each started on SERVER_CPU and waited for (bounded): gitops-receiver
(`python -m receiver.cli serve` on the cluster's kubeconfig), the minimal reference handler, and
Flux's notification-controller (built by scripts/build-notification-controller.sh into the
cache folder, once) with one Receiver per pushed repository.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import yaml

from benchmarks.harness.bed import Bed
from benchmarks.harness.cluster import create_all
from benchmarks.harness.payloads import (
    FLUX_NS,
    PROBE_NS,
    PROBES,
    SYSTEM_NS,
    TOKEN,
    flux_receiver,
    object_name,
)
from benchmarks.harness.processes import PYTHON, REPO_ROOT, SERVER_CPU, Process, log_tail, wait_http
from receiver.routing.hooks import webhook_path
from tests import envtest

FLUX_VERSION = "v1.9.0"
READY_TIMEOUT_S = 600.0


async def start_ours(
    bed: Bed,
    *,
    tag: str,
    workers: int,
    log_level: str,
    min_interval_s: float | None = None,
    profile_dir: str | None = None,
    extra_config: dict[str, Any] | None = None,
) -> tuple[Process, dict[str, int]]:
    """gitops-receiver with the discovery endpoint `/webhooks/github` (and `extra_config`'s
    top-level settings); returns (process, ports by name: webhook, health, metrics). The
    per-client rate limit is off (the load generator is one client standing in for every
    forge) unless `extra_config` sets `limits`."""
    assert bed.cluster.server is not None
    ports = {name: envtest.free_port() for name in ("webhook", "health", "metrics")}
    config = bed.work / f"receiver-{tag}.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "trigger": {
                    "workers": workers,
                    **({} if min_interval_s is None else {"min_interval_s": min_interval_s}),
                },
                "write_receiver_status": False,  # Flux's controller writes them in its rows
                "discovery": {
                    "endpoints": {
                        "github": {"secret_ref": {"namespace": SYSTEM_NS, "name": "webhook-token"}}
                    }
                },
                "limits": {"client_rate_per_s": 0},
                **(extra_config or {}),
            }
        )
    )
    log = bed.work / f"receiver-{tag}.log"
    profile = (
        ["-m", "cProfile", "-o", str(Path(profile_dir) / f"receiver-{tag}.prof")]
        if profile_dir
        else []
    )
    proc = bed.children.start(
        [
            PYTHON,
            *profile,
            "-m",
            "receiver.cli",
            "serve",
            "--kubeconfig",
            str(bed.cluster.server.kubeconfig_path),
            "--config",
            str(config),
            "--listen",
            f"127.0.0.1:{ports['webhook']}",
            "--health-listen",
            f"127.0.0.1:{ports['health']}",
            "--metrics-listen",
            f"127.0.0.1:{ports['metrics']}",
            "--no-status",
            "--log-level",
            log_level,
        ],
        log=log,
        cpus=SERVER_CPU,
    )
    await wait_http(
        f"http://127.0.0.1:{ports['health']}/readyz", proc=proc, log=log, timeout_s=READY_TIMEOUT_S
    )
    return proc, ports


async def start_minimal(bed: Bed) -> tuple[Process, int]:
    """Reference (a), the ceiling (harness/minimal.py); returns (process, port)."""
    port = envtest.free_port()
    log = bed.work / "minimal.log"
    proc = bed.children.start(
        [PYTHON, "-m", "benchmarks.harness.minimal", "--port", str(port)],
        log=log,
        cpus=SERVER_CPU,
        env={**os.environ, "BENCH_WEBHOOK_SECRET": TOKEN},
    )
    await wait_http(f"http://127.0.0.1:{port}/healthz", proc=proc, log=log, timeout_s=60)
    return proc, port


def flux_binary() -> tuple[Path, Path] | str:
    """(notification-controller binary, a folder of CRDs that includes its Receiver), built
    once into the cache folder; or why not. The Flux test bed (scripts/build-flux.sh, all
    controllers and CRDs) is used where it exists, else scripts/build-notification-controller.sh
    builds this one controller."""
    root = Path(
        os.environ.get("GITOPS_RECEIVER_CACHE")
        or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "gitops-receiver"
    )
    found = _built_flux(root)
    if found is not None:
        return found
    binary = root / "flux" / f"notification-controller-{FLUX_VERSION}"
    if shutil.which("go") is None:
        return f"{binary} is missing and there is no Go toolchain to build it"
    script = REPO_ROOT / "scripts" / "build-flux.sh"
    if not script.exists():
        script = REPO_ROOT / "scripts" / "build-notification-controller.sh"
    print(f"building notification-controller {FLUX_VERSION} with {script.name} (once)...")
    build = subprocess.run(
        ["bash", str(script)], capture_output=True, text=True, timeout=3600, check=False
    )
    if build.returncode != 0:
        tail = "\n".join((build.stdout + build.stderr).splitlines()[-10:])
        return f"scripts/{script.name} failed:\n{tail}"
    return _built_flux(root) or f"{script.name} built no notification-controller {FLUX_VERSION}"


def _built_flux(root: Path) -> tuple[Path, Path] | None:
    for versions in sorted(root.glob("flux/*/versions")):
        if f"notification-controller={FLUX_VERSION}" in versions.read_text().split():
            return versions.parent / "notification-controller", versions.parent / "crds"
    binary = root / "flux" / f"notification-controller-{FLUX_VERSION}"
    crds = root / "flux" / f"crds-{FLUX_VERSION}"
    return (binary, crds) if binary.exists() and crds.is_dir() else None


def receiver_name(objects: int, repo: int) -> str:
    """The Receiver for one pushed repository at one size (sizes differ in their members)."""
    return f"n{objects}-repo-{repo:05d}"


async def create_receivers(bed: Bed, *, objects: int, repos: list[int], repo_count: int) -> None:
    """One Receiver per pushed repository (listing the repository's GitRepositories) plus one
    per probe object, in FLUX_NS; both gitops-receiver and notification-controller serve them."""
    receivers = []
    for repo in repos:
        members = [object_name(i) for i in range(repo, objects, repo_count)]
        receivers.append(flux_receiver(receiver_name(objects, repo), members))
    for k in range(PROBES):
        receivers.append(flux_receiver(f"probe-{k:02d}", [(PROBE_NS, f"probe-{k:02d}")]))
    await create_all(bed.api, receivers, concurrency=32)


def hook_paths(*, objects: int, repos: list[int]) -> tuple[dict[int, str], list[str]]:
    """gitops-receiver's (and Flux's) webhook paths: per pushed repository, and per probe."""

    def path(name: str) -> str:
        return str(webhook_path(token=TOKEN.encode(), name=name, namespace=FLUX_NS))

    return (
        {repo: path(receiver_name(objects, repo)) for repo in repos},
        [path(f"probe-{k:02d}") for k in range(PROBES)],
    )


async def install_flux_crds(bed: Bed, *, crd_dir: Path) -> None:
    assert bed.cluster.server is not None
    await asyncio.to_thread(
        envtest.install_crds, kubeconfig_path=bed.cluster.server.kubeconfig_path, crd_dirs=[crd_dir]
    )


async def start_flux(
    bed: Bed, *, binary: Path, extra: list[str], receivers: list[str]
) -> tuple[Process, int, dict[str, str]]:
    """notification-controller watching every namespace; waits until the named Receivers are
    Ready. Returns (process, receiver port, Receiver name -> webhook path)."""
    assert bed.cluster.server is not None
    ports = {name: envtest.free_port() for name in ("receiver", "metrics", "health", "events")}
    log = bed.work / f"notification-controller-{len(extra)}.log"
    proc = bed.children.start(
        [
            str(binary),
            "--watch-all-namespaces=true",
            f"--receiverAddr=127.0.0.1:{ports['receiver']}",
            f"--metrics-addr=127.0.0.1:{ports['metrics']}",
            f"--health-addr=127.0.0.1:{ports['health']}",
            f"--events-addr=127.0.0.1:{ports['events']}",
            "--enable-leader-election=false",
            "--log-level=info",
            *extra,
        ],
        log=log,
        cpus=SERVER_CPU,
        env={**os.environ, "KUBECONFIG": str(bed.cluster.server.kubeconfig_path)},
    )
    await wait_http(f"http://127.0.0.1:{ports['health']}/readyz", proc=proc, log=log, timeout_s=120)
    paths = await flux_paths(bed, names=set(receivers), proc=proc, log=log)
    return proc, ports["receiver"], paths


async def flux_paths(bed: Bed, *, names: set[str], proc: Process, log: Path) -> dict[str, str]:
    """Wait (bounded) until the named Receivers are Ready with a webhook path; name -> path."""
    deadline = time.monotonic() + 300
    paths: dict[str, str] = {}
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"notification-controller exited:\n{log_tail(log)}")
        _, listing = await bed.api.call(
            "GET", f"/apis/notification.toolkit.fluxcd.io/v1/namespaces/{FLUX_NS}/receivers"
        )
        paths = {}
        for item in listing.get("items", []):
            status = item.get("status") or {}
            ready = any(
                c.get("type") == "Ready" and c.get("status") == "True"
                for c in status.get("conditions") or []
            )
            if ready and status.get("webhookPath") and item["metadata"]["name"] in names:
                paths[item["metadata"]["name"]] = status["webhookPath"]
        if len(paths) >= len(names):
            return paths
        await asyncio.sleep(1.0)
    raise RuntimeError(f"only {len(paths)}/{len(names)} Receivers became Ready within 300s")
