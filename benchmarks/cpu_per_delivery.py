"""Benchmark: gitops-receiver's CPU per delivery at a fixed offered push rate, both paths.

Answers per second at saturation need a core of one's own; CPU time per delivery at a rate the
server keeps up with does not, so this is the figure to compare builds with on a shared
machine. Starts kube-apiserver + etcd, seeds N GitRepositories, starts gitops-receiver on CPU 0
and offers signed pushes over 1,000 repositories at a fixed rate (harness/rate.py, open loop)
to the discovery path and then to the Receiver path; the server's CPU seconds from the first
push until the last patch landed, divided by the pushes, and the patches that landed.

    .venv/bin/python benchmarks/cpu_per_delivery.py [--objects 10000] [--rate 300] [--duration-s 15]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.harness import bed as beds
from benchmarks.harness import pushrate, servers
from benchmarks.harness.payloads import entries_for, object_name, sample_repos
from benchmarks.harness.processes import OTHERS_CPU, Children, cpu_seconds


async def driver(args: argparse.Namespace) -> None:
    async with beds.open_bed(args) as bed:
        for objects in args.objects:
            await bed.cluster.seed(objects, repos=args.repos, concurrency=args.seed_concurrency)
            repos = sample_repos(objects, repos=args.repos, sample=args.sample_repos)
            await servers.create_receivers(bed, objects=objects, repos=repos, repo_count=args.repos)
            proc, ports = await servers.start_ours(
                bed,
                tag=f"cpu-{objects}",
                workers=args.workers,
                log_level=args.log_level,
                min_interval_s=args.min_interval_s,
            )
            members = [[object_name(i) for i in range(r, objects, args.repos)] for r in repos]
            repo_paths, _ = servers.hook_paths(objects=objects, repos=repos)
            try:
                for name, paths in (
                    ("discovery /webhooks/github", dict.fromkeys(repos, "/webhooks/github")),
                    ("Receiver /hook/<digest>", repo_paths),
                ):
                    with bed.cluster.pinned(OTHERS_CPU):
                        before = cpu_seconds([proc.pid])
                        started = time.monotonic()
                        step = await pushrate.run_step(
                            bed,
                            base_url=f"http://127.0.0.1:{ports['webhook']}",
                            entries=entries_for(repos, paths),
                            members=members,
                            rate=args.rate,
                            duration_s=args.duration_s,
                            run_id=f"cpu-{objects}-{name.split()[0]}",
                        )
                        cpu_s = cpu_seconds([proc.pid]) - before
                        elapsed = time.monotonic() - started
                    print(
                        f"  {objects:>7,} objects, {name:<28} {args.rate:,.0f} pushes/s: "
                        f"{cpu_s / step.pushes * 1e6:6.0f} µs CPU per delivery (patches "
                        f"included), webhook->patch p50/p99 {step.p50_s * 1000:.0f}/"
                        f"{step.p99_s * 1000:.0f} ms, {step.errors} errors; window {elapsed:.0f}s, "
                        f"machine load average {os.getloadavg()[0]:.1f}",
                        flush=True,
                    )
            finally:
                Children.stop(proc)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    beds.add_common_arguments(parser, objects=[10_000])
    parser.add_argument("--rate", type=float, default=300.0, help="pushes/s (default 300)")
    parser.add_argument("--duration-s", type=float, default=15.0, help="per path (default 15)")
    parser.add_argument("--sample-repos", type=int, default=1000)
    return parser.parse_args()


if __name__ == "__main__":
    beds.run(driver, parse_args())
