"""A benchmark's test bed: work folder, children, load generator choice and cluster, opened and
closed in one place; the command-line options every script shares; `run` for a clean Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shutil
import signal
import sys
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.harness.cluster import Api, Cluster
from benchmarks.harness.processes import Children, work_dir


@dataclass
class Bed:
    work: Path
    children: Children
    tool: str  # "wrk" or "python"
    cluster: Cluster

    @property
    def api(self) -> Api:
        assert self.cluster.api is not None, "the cluster is not started"
        return self.cluster.api


@contextlib.asynccontextmanager
async def open_bed(args: argparse.Namespace, *, with_cluster: bool = True) -> AsyncIterator[Bed]:
    """Start the cluster (when asked); on the way out stop every child, then the cluster."""
    tool = args.loadgen
    if tool == "auto":
        tool = "wrk" if shutil.which("wrk") else "python"
    with work_dir(args.keep_logs) as work:
        bed = Bed(work=work, children=Children(), tool=tool, cluster=Cluster())
        try:
            if with_cluster:
                print("starting kube-apiserver + etcd...", flush=True)
                await bed.cluster.start()
            yield bed
        finally:
            bed.children.stop_all()
            await bed.cluster.stop()


def object_counts(text: str) -> list[int]:
    return sorted(int(x) for x in text.split(",") if x)


def add_common_arguments(parser: argparse.ArgumentParser, *, objects: list[int]) -> None:
    """Options shared by the scripts that run gitops-receiver against the cluster."""
    parser.add_argument(
        "--objects",
        type=object_counts,
        default=objects,
        help=f"GitRepository counts, comma-separated (default {','.join(map(str, objects))})",
    )
    parser.add_argument("--repos", type=int, default=10_000, help="repositories (default 10000)")
    parser.add_argument("--seed-concurrency", type=int, default=64)
    parser.add_argument("--loadgen", choices=["auto", "wrk", "python"], default="auto")
    parser.add_argument(
        "--log-level", choices=["debug", "info", "warning", "error"], default="info"
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=32,
        help="gitops-receiver trigger.workers (default 32, as the service)",
    )
    parser.add_argument(
        "--min-interval-s",
        type=float,
        help="gitops-receiver trigger.min_interval_s (default: the service's)",
    )
    parser.add_argument("--keep-logs", action="store_true")
    parser.add_argument(
        "--profile", metavar="DIR", help="run gitops-receiver under cProfile, stats into DIR"
    )


def run(
    driver: Callable[[argparse.Namespace], Coroutine[Any, Any, None]], args: argparse.Namespace
) -> None:
    """Run `driver(args)`; SIGTERM and Ctrl-C stop every child and exit 130."""

    def on_term(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    try:
        asyncio.run(driver(args))
    except KeyboardInterrupt:
        print("interrupted: children stopped", file=sys.stderr)
        sys.exit(130)
