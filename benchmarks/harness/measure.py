"""One measured row: warm up, time webhook -> patch with probe pushes (idle, then under load),
run the load, and read the server's CPU, run-queue wait and the patches that landed meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from benchmarks.harness.bed import Bed
from benchmarks.harness.cluster import Landed, quiet, watching
from benchmarks.harness.load import LoadResult, percentile, run_load
from benchmarks.harness.payloads import PROBE_NS, PROBES, Entry, push_body, signature
from benchmarks.harness.processes import (
    OTHERS_CPU,
    PYTHON,
    Process,
    cpu_seconds,
    runqueue_wait_seconds,
)


@dataclass(frozen=True)
class LoadPlan:
    """How each row is loaded: connections, warm-up and measured seconds, probe spacing."""

    concurrency: int
    warmup_s: float
    duration_s: float
    probe_interval_s: float
    py_spy_dir: Path | None = None  # sample the server with py-spy during the load, into DIR


async def probe_latency(
    *,
    base_url: str,
    paths: list[str],
    landed: Landed,
    stop: asyncio.Event,
    interval_s: float,
    results: list[float],
    run_id: str,
) -> None:
    """Every `interval_s`, push to the next probe repository (one object each) and time the
    webhook send -> its annotation landing in the watch. Probes are spaced so none coalesce."""
    k = 0
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        pending: list[asyncio.Task[None]] = []

        async def one(index: int, seq: int) -> None:
            key = (PROBE_NS, f"probe-{index:02d}")
            seen = len(landed.times.get(key, []))
            body = push_body(f"probe/probe-{index:02d}", seq=seq)
            headers = {
                "Content-Type": "application/json",
                "X-GitHub-Event": "push",
                "X-GitHub-Delivery": f"{run_id}-probe-{seq}",
                "X-Hub-Signature-256": signature(body),
            }
            sent = time.monotonic()
            async with session.post(base_url + paths[index], data=body, headers=headers) as resp:
                await resp.read()
                if resp.status != 200:
                    return
            deadline = sent + 20
            while time.monotonic() < deadline:
                times = landed.times.get(key, [])
                if len(times) > seen:
                    results.append(times[seen] - sent)
                    return
                await asyncio.sleep(0.005)

        while not stop.is_set():
            pending.append(asyncio.create_task(one(k % len(paths), k)))
            k += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=interval_s)
        await asyncio.gather(*pending, return_exceptions=True)


@dataclass
class Row:
    name: str
    objects: int
    load: LoadResult | None = None
    landed_per_s: float = float("nan")
    drain_s: float = float("nan")
    probe_ms: list[float] = field(default_factory=list)
    idle_probe_ms: list[float] = field(default_factory=list)
    server_cores: float = float("nan")
    server_cpu_s: float = float("nan")  # CPU seconds of the server during the load
    cluster_cores: float = float("nan")
    server_waiting: float = float("nan")  # share of the load window runnable but not running
    note: str = ""
    ready_s: float = float("nan")
    rss_mib: float = float("nan")

    @property
    def cpu_us_per_delivery(self) -> float:
        if self.load is None or not self.load.requests:
            return float("nan")
        return self.server_cpu_s / self.load.requests * 1e6


def fmt(value: float, spec: str = ".1f") -> str:
    return "n/a" if value != value else format(value, spec)  # NaN check


def latency_summary(samples: list[float]) -> str:
    if not samples:
        return "n/a"
    ordered = sorted(x * 1000 for x in samples)
    return (
        f"{percentile(ordered, 50):.1f}/{percentile(ordered, 90):.1f}/"
        f"{percentile(ordered, 99):.1f} ms (n={len(ordered)})"
    )


def _start_py_spy(bed: Bed, *, plan: LoadPlan, row: Row, server_pid: int) -> Process | None:
    """py-spy (from PyPI) sampling the server for the load's duration, as collapsed stacks."""
    if plan.py_spy_dir is None:
        return None
    plan.py_spy_dir.mkdir(parents=True, exist_ok=True)
    name = "-".join(row.name.split()[:2]).strip("()").replace("/", "_")
    output = plan.py_spy_dir / f"{name}-{row.objects}.txt"
    return bed.children.start(
        [
            str(Path(PYTHON).with_name("py-spy")),
            "record",
            "--pid",
            str(server_pid),
            "--duration",
            str(max(1, round(plan.duration_s))),
            "--rate",
            "250",
            "--format",
            "raw",
            "--nonblocking",
            "--output",
            str(output),
        ],
        log=bed.work / f"py-spy-{name}-{row.objects}.log",
        cpus=OTHERS_CPU,
    )


async def measure(
    bed: Bed,
    *,
    plan: LoadPlan,
    row: Row,
    base_url: str,
    entries: list[Entry],
    probe_paths: list[str] | None,
    server_pid: int,
    drain_limit_s: float = 120.0,
) -> None:
    """Warm up, probe webhook -> patch latency idle, then under load; CPU per process. The
    server must run on SERVER_CPU; everything else is on OTHERS_CPU meanwhile."""
    with bed.cluster.pinned(OTHERS_CPU):
        run_id = f"{row.name.split()[0]}-{row.objects}-{int(time.time())}"
        load_args: dict[str, Any] = {
            "children": bed.children,
            "tool": bed.tool,
            "work": bed.work,
            "base_url": base_url,
            "entries": entries,
            "concurrency": plan.concurrency,
        }
        await run_load(**load_args, duration_s=plan.warmup_s, run_id=run_id + "-warm")
        async with watching(bed.api) as landed:

            def probing(
                paths: list[str], results: list[float], *, interval_s: float, suffix: str
            ) -> tuple[asyncio.Event, asyncio.Task[None]]:
                stop = asyncio.Event()
                task = asyncio.create_task(
                    probe_latency(
                        base_url=base_url,
                        paths=paths,
                        landed=landed,
                        stop=stop,
                        interval_s=interval_s,
                        results=results,
                        run_id=run_id + suffix,
                    )
                )
                return stop, task

            await quiet(landed, idle_s=1.0, limit_s=drain_limit_s)
            probe = None
            if probe_paths is not None:
                stop, task = probing(probe_paths, row.idle_probe_ms, interval_s=0.1, suffix="-i")
                await asyncio.sleep(2.0)
                stop.set()
                await task
                probe = probing(
                    probe_paths, row.probe_ms, interval_s=plan.probe_interval_s, suffix=""
                )
            start = time.monotonic()
            cpu_before = (cpu_seconds([server_pid]), cpu_seconds(bed.cluster.pids()))
            wait_before = runqueue_wait_seconds(server_pid)
            spy = _start_py_spy(bed, plan=plan, row=row, server_pid=server_pid)
            row.load = await run_load(**load_args, duration_s=plan.duration_s, run_id=run_id)
            if spy is not None:
                await asyncio.to_thread(spy.wait, 30)
            end = time.monotonic()
            row.server_cpu_s = cpu_seconds([server_pid]) - cpu_before[0]
            row.server_cores = row.server_cpu_s / (end - start)
            row.cluster_cores = (cpu_seconds(bed.cluster.pids()) - cpu_before[1]) / (end - start)
            row.server_waiting = (runqueue_wait_seconds(server_pid) - wait_before) / (end - start)
            if probe is not None:
                probe[0].set()
                await probe[1]
            if probe_paths is not None:
                last = await quiet(landed, idle_s=2.0, limit_s=drain_limit_s)
                row.drain_s = max(0.0, last - end)
                probe_keys = {(PROBE_NS, f"probe-{k:02d}") for k in range(PROBES)}
                load_landed = sum(
                    1
                    for key, times in landed.times.items()
                    if key not in probe_keys
                    for t in times
                    if start <= t <= end
                )
                row.landed_per_s = load_landed / (end - start)
        load = row.load
        print(
            f"  {row.name:<40} {row.objects:>7,} objects: {load.rps:8,.0f} req/s  "
            f"answer p50/p90/p99 {load.p50_ms:.1f}/{load.p90_ms:.1f}/{load.p99_ms:.1f} ms  "
            f"errors {load.errors}  patches landed {fmt(row.landed_per_s, ',.0f')}/s  "
            f"backlog drained {fmt(row.drain_s)}s after load  webhook->patch idle "
            f"{latency_summary(row.idle_probe_ms)}, under load {latency_summary(row.probe_ms)}; "
            f"CPU: server on CPUs {sorted(os.sched_getaffinity(server_pid))} "
            f"{row.server_cores:.2f} cores, {row.cpu_us_per_delivery:.0f} µs per delivery (waited for a CPU "
            f"{row.server_waiting:.0%} of the time), load generator "
            f"{load.cpu_s / load.duration_s:.2f}, apiserver+etcd {row.cluster_cores:.2f}; "
            f"machine load average {os.getloadavg()[0]:.1f}",
            flush=True,
        )
