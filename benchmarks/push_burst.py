"""Benchmark: 1,000 pushes to one repository within one second -> patches per object.

Starts kube-apiserver + etcd, seeds N GitRepositories over 10,000 repositories and, for each
N, runs gitops-receiver (discovery endpoint `/webhooks/github`) and sends 1,000 signed pushes
to repository 0 spread evenly over one second, each with its own delivery id. A watch on the
API server counts the reconcile annotations that land per object of that repository; the
target is at most 3. Every wait is bounded; everything listens on 127.0.0.1.

    .venv/bin/python benchmarks/push_burst.py [--objects 100,10000,100000]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.harness import bed as beds
from benchmarks.harness import servers
from benchmarks.harness.cluster import delta, quiet, scrape, watching
from benchmarks.harness.payloads import object_name, push_body, repo_path, signature
from benchmarks.harness.processes import Children

BURST_PUSHES = 1000
TARGET_PATCHES_PER_OBJECT = 3


async def run_burst(
    bed: beds.Bed, *, objects: int, repos: int, ports: dict[str, int]
) -> dict[str, Any]:
    repo = 0
    members = [object_name(i) for i in range(repo, objects, repos)]
    body = push_body(repo_path(repo), seq=999_999)
    headers = {
        "Content-Type": "application/json",
        "X-GitHub-Event": "push",
        "X-Hub-Signature-256": signature(body),
    }
    url = f"http://127.0.0.1:{ports['webhook']}/webhooks/github"
    metrics_url = f"http://127.0.0.1:{ports['metrics']}/metrics"
    before = await scrape(metrics_url)
    statuses: list[int] = []
    async with (
        watching(bed.api) as landed,
        aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=200),
            timeout=aiohttp.ClientTimeout(total=30),
        ) as session,
    ):
        await quiet(landed, idle_s=1.0, limit_s=60)
        start = time.monotonic()

        async def one(k: int) -> None:
            await asyncio.sleep(max(0.0, start + k / BURST_PUSHES - time.monotonic()))
            async with session.post(
                url, data=body, headers={**headers, "X-GitHub-Delivery": f"burst-{k}"}
            ) as response:
                await response.read()
                statuses.append(response.status)

        await asyncio.gather(*(one(k) for k in range(BURST_PUSHES)))
        sent_s = time.monotonic() - start
        await quiet(landed, idle_s=3.0, limit_s=60)
        counts = {m: len(landed.times.get(m, [])) for m in members}
    after = await scrape(metrics_url)
    burst = {
        "objects": objects,
        "members": len(members),
        "sent_s": sent_s,
        "ok": sum(1 for s in statuses if s == 200),
        "max": max(counts.values()),
        "min": min(counts.values()),
        "patched": delta(before, after, "gitops_receiver_reconcile_requests_total", "patched"),
        "collapsed": delta(before, after, "gitops_receiver_reconcile_requests_total", "collapsed"),
    }
    print(
        f"  burst: {BURST_PUSHES} pushes to {repo_path(repo)} ({len(members)} objects) sent in "
        f"{sent_s:.2f}s, {burst['ok']} answered 200; patches landed per object "
        f"min {burst['min']} max {burst['max']} (watch events); metrics: "
        f"{burst['patched']:.0f} patched, {burst['collapsed']:.0f} collapsed",
        flush=True,
    )
    return burst


async def driver(args: argparse.Namespace) -> None:
    bursts = []
    async with beds.open_bed(args) as bed:
        for objects in args.objects:
            await bed.cluster.seed(objects, repos=args.repos, concurrency=args.seed_concurrency)
            proc, ports = await servers.start_ours(
                bed,
                tag=f"burst-{objects}",
                workers=args.workers,
                log_level=args.log_level,
                min_interval_s=args.min_interval_s,
                profile_dir=args.profile,
            )
            try:
                bursts.append(await run_burst(bed, objects=objects, repos=args.repos, ports=ports))
            finally:
                Children.stop(proc)
    print()
    print("TARGETS")
    for burst in bursts:
        ok = burst["max"] <= TARGET_PATCHES_PER_OBJECT
        print(
            f"  1,000 pushes to one repo in 1 s -> <= {TARGET_PATCHES_PER_OBJECT} patches/object "
            f"({burst['objects']:,})  {'MET' if ok else 'NOT MET':<8} max {burst['max']} "
            f"patches/object ({burst['members']} objects in the repository, pushes sent in "
            f"{burst['sent_s']:.2f}s)"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    beds.add_common_arguments(parser, objects=[100, 10_000])
    beds.run(driver, parser.parse_args())
