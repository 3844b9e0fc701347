"""Benchmark: RouteIndex memory per object and route() latency at 100, 10,000 and 100,000 objects.

Objects are spread over 10,000 repositories (object i uses repository i mod 10,000), built
from raw GitRepository dicts the way the watch feeds them (routing/records.py), the raw dicts
dropped. Memory is what tracemalloc sees the index retain, per object. Latency is the median
(and p99) of route() for pushes naming three URLs (https clone, ssh, web), measured without
tracemalloc. A script that prints figures, not a test.

    .venv/bin/python benchmarks/routing_memory.py [--pushes 5000]
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
import tracemalloc
from typing import Any

from receiver.events import GitPush
from receiver.routing import records
from receiver.routing.index import RouteIndex

SIZES = (100, 10_000, 100_000)
REPOSITORIES = 10_000
TARGET_BYTES_PER_OBJECT = 1024


def raw_git_repository(i: int) -> dict[str, Any]:
    """A realistic GitRepository as the API returns it: labels, a ref, some with path filters."""
    repo = i % REPOSITORIES
    metadata: dict[str, Any] = {
        "name": f"app-{i:06d}",
        "namespace": f"team-{i % 200:03d}",
        "uid": f"3f0c{i:028x}",
        "resourceVersion": str(1000 + i),
        "labels": {"app.kubernetes.io/part-of": f"team-{i % 200:03d}", "tier": "prod"},
    }
    if i % 4 == 0:
        metadata["annotations"] = {"gitops-receiver.io/paths": f"clusters/prod-{i % 7}, apps"}
    ref: dict[str, str] = {"branch": "main"} if i % 10 else {"semver": ">=1.0.0 <2.0.0"}
    return {
        "apiVersion": "source.toolkit.fluxcd.io/v1",
        "kind": "GitRepository",
        "metadata": metadata,
        "spec": {
            "interval": "10m",
            "url": f"ssh://git@git.example.com/group-{repo % 97}/repo-{repo:05d}.git",
            "ref": ref,
            "secretRef": {"name": "git-credentials"},
        },
        "status": {"artifact": {"revision": f"main@sha1:{i:040x}"}},
    }


PROBE_PATH = "probe/only-one"


def build(size: int) -> RouteIndex:
    """`size` objects over the repositories, plus one probe object alone in its repository."""
    index = RouteIndex()
    for i in range(size):
        index.upsert(records.record_from_git_repository(raw_git_repository(i)))
    probe = raw_git_repository(size)
    probe["spec"]["url"] = f"https://git.example.com/{PROBE_PATH}.git"
    index.upsert(records.record_from_git_repository(probe))
    return index


def measure_memory(size: int) -> float:
    """Bytes the index retains per object; a throw-away build first warms the module caches
    (compiled regular expressions, shared values) so they are not charged to small sizes."""
    build(100)
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    index = build(size)
    gc.collect()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    assert len(index) == size + 1
    return (after - before) / (size + 1)


def pushes(count: int, *, size: int, probe: bool) -> list[GitPush]:
    """Pushes spread over the used repositories, or all to the probe repository."""
    used = min(size, REPOSITORIES)
    result = []
    for k in range(count):
        repo = (k * 7919) % used
        path = PROBE_PATH if probe else f"group-{repo % 97}/repo-{repo:05d}"
        result.append(
            GitPush(
                source="gitlab",
                event="Push Hook",
                repo_urls=(
                    f"https://git.example.com/{path}.git",
                    f"git@git.example.com:{path}.git",
                    f"https://git.example.com/{path}",
                ),
                ref="refs/heads/main",
                default_branch="main",
                changed_paths=frozenset({"apps/web/deployment.yaml", "README.md"}),
            )
        )
    return result


def measure_latency(index: RouteIndex, batch: list[GitPush]) -> tuple[float, float, float]:
    """(median µs, p99 µs, mean targets per push)."""
    for push in batch[:200]:  # warm up
        index.route(push)
    samples: list[float] = []
    targets = 0
    for push in batch:
        start = time.perf_counter_ns()
        result = index.route(push)
        samples.append((time.perf_counter_ns() - start) / 1000)
        targets += len(result.targets)
    samples.sort()
    p99 = samples[min(len(samples) - 1, int(len(samples) * 0.99))]
    return statistics.median(samples), p99, targets / len(batch)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pushes", type=int, default=5000, help="route() calls per size")
    args = parser.parse_args()
    print(
        f"{'objects':>8}  {'bytes/object':>12}  {'median':>9}  {'p99':>9}  {'targets':>7}"
        f"  {'probe median':>12}  {'probe p99':>9}"
    )
    medians: dict[int, float] = {}
    probes: dict[int, float] = {}
    worst_bytes = 0.0
    for size in SIZES:
        per_object = measure_memory(size)
        worst_bytes = max(worst_bytes, per_object)
        index = build(size)
        median, p99, mean_targets = measure_latency(
            index, pushes(args.pushes, size=size, probe=False)
        )
        probe_median, probe_p99, _ = measure_latency(
            index, pushes(args.pushes, size=size, probe=True)
        )
        medians[size], probes[size] = median, probe_median
        print(
            f"{size:>8}  {per_object:>12.0f}  {median:>7.1f}µs  {p99:>7.1f}µs  {mean_targets:>7.1f}"
            f"  {probe_median:>10.1f}µs  {probe_p99:>7.1f}µs"
        )
        del index
    first, last = SIZES[0], SIZES[-1]
    print(
        f"median route() at {last:,} / at {first:,} objects: "
        f"{medians[last] / medians[first]:.2f}x spread pushes (each reconciles all objects of "
        f"its repository: {last // REPOSITORIES} vs 1), "
        f"{probes[last] / probes[first]:.2f}x for a one-object repository (target <= 1.2x)"
    )
    print(
        f"largest bytes/object: {worst_bytes:.0f} "
        f"(target <= {TARGET_BYTES_PER_OBJECT}: {'met' if worst_bytes <= 1024 else 'NOT met'})"
    )


if __name__ == "__main__":
    main()
