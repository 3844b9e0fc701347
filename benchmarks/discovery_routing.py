"""Benchmark: discovery routing in-process, with the real GitHub parser, at 100 / 10,000 /
100,000 GitRepositories (the objects the end-to-end benchmarks seed).

Per size: index memory per object (tracemalloc around building Discovery) and the median
`Discovery.route()` of parsed pushes, both spread over the used repositories and to a
one-object probe repository (the same work at every size; the target is within 1.2x from 100 to
the largest size). No cluster, no server. benchmarks/routing_memory.py measures RouteIndex
alone on raw objects.

    .venv/bin/python benchmarks/discovery_routing.py [--objects 100,10000,100000]
"""

from __future__ import annotations

import argparse
import gc
import random
import statistics
import sys
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.harness.bed import object_counts
from benchmarks.harness.payloads import (
    git_repository,
    probe_repository,
    push_body,
    repo_path,
)

TARGET_ROUTING_RATIO = 1.2
TARGET_BYTES_PER_OBJECT = 1024


def routing_figures(sizes: list[int], *, repos: int, pushes: int) -> dict[int, dict[str, float]]:
    """Discovery fed the seeded objects in-process: tracemalloc bytes per object, and median
    `Discovery.route()` for GitHub pushes parsed by the real source, both spread over the used
    repositories and to a one-object probe repository (same work at every size)."""
    from receiver.events import GitPush
    from receiver.routing.discovery import Discovery
    from receiver.sources import github
    from receiver.sources.base import RawDelivery

    def parsed(path: str, seq: int) -> GitPush:
        body = push_body(path, seq=seq)
        (event,) = github.SOURCE.parse(
            RawDelivery(
                headers={"x-github-event": "push", "x-github-delivery": str(seq)}, body=body
            )
        )
        assert isinstance(event, GitPush)
        return event

    def build(size: int) -> Discovery:
        discovery = Discovery(with_downstream=False)
        for i in range(size):
            discovery.apply_git_repository("ADDED", git_repository(i, repos=repos))
        discovery.apply_git_repository("ADDED", probe_repository(0))
        return discovery

    def median_us(discovery: Discovery, batch: list[GitPush]) -> tuple[float, float]:
        """The lowest of three medians (a shared machine adds noise, never removes it)."""
        for push in batch[:200]:
            discovery.route(push)
        medians = []
        targets = 0
        for _ in range(3):
            samples = []
            targets = 0
            for push in batch:
                start = time.perf_counter_ns()
                routed = discovery.route(push)
                samples.append((time.perf_counter_ns() - start) / 1000)
                targets += len(routed.targets)
            medians.append(statistics.median(samples))
        return min(medians), targets / len(batch)

    figures: dict[int, dict[str, float]] = {}
    build(100)  # warm module caches (compiled patterns, shared values) before measuring
    for size in sizes:
        gc.collect()
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        discovery = build(size)
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
        used = min(size, repos)
        rng = random.Random(11)
        spread = [parsed(repo_path(rng.randrange(used)), k) for k in range(pushes)]
        probe = [parsed("probe/probe-00", k) for k in range(pushes)]
        spread_us, targets = median_us(discovery, spread)
        probe_us, _ = median_us(discovery, probe)
        figures[size] = {
            "bytes_per_object": (after - before) / (size + 1),
            "spread_median_us": spread_us,
            "spread_targets": targets,
            "probe_median_us": probe_us,
        }
        del discovery
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=object_counts, default=[100, 10_000, 100_000])
    parser.add_argument("--repos", type=int, default=10_000)
    parser.add_argument("--pushes", type=int, default=3000)
    args = parser.parse_args()
    figures = routing_figures(sorted({100, *args.objects}), repos=args.repos, pushes=args.pushes)
    for size, fig in sorted(figures.items()):
        print(
            f"  {size:>7,} objects: {fig['bytes_per_object']:.0f} B/object, route() median "
            f"{fig['probe_median_us']:.1f}µs one-object repository, "
            f"{fig['spread_median_us']:.1f}µs spread ({fig['spread_targets']:.1f} targets)",
            flush=True,
        )
    print()
    print("TARGETS")
    low, high = min(figures), max(figures)
    ratio = figures[high]["probe_median_us"] / figures[low]["probe_median_us"]
    spread = figures[high]["spread_median_us"] / figures[low]["spread_median_us"]
    print(
        f"  median routing latency at {high:,} within {TARGET_ROUTING_RATIO}x of {low:,}  "
        f"{'MET' if ratio <= TARGET_ROUTING_RATIO else 'NOT MET':<8} "
        f"{figures[high]['probe_median_us']:.1f} vs {figures[low]['probe_median_us']:.1f} µs = "
        f"{ratio:.2f}x (spread pushes {spread:.2f}x, they hit "
        f"{figures[high]['spread_targets']:.0f} vs {figures[low]['spread_targets']:.0f} objects)"
    )
    worst = max(fig["bytes_per_object"] for fig in figures.values())
    print(
        f"  index memory <= 1 KiB per object  "
        f"{'MET' if worst <= TARGET_BYTES_PER_OBJECT else 'NOT MET':<8} "
        f"{worst:.0f} B/object (largest over sizes, tracemalloc)"
    )


if __name__ == "__main__":
    main()
