"""Benchmark: the Argo CD index (routing/argocd_index.py) at 100, 10,000 and 100,000
Applications: memory per object, and the median route() of a push, spread over the used
repositories and to a one-object probe repository (the same work at every size).

Applications are built from raw dicts the way the watch feeds them (`argocd.record_from_object`),
one in ten with `manifest-generate-paths`, one in ten with two sources, spread over 10,000
repositories, plus one ApplicationSet per 100 Applications. Pushes are those of
benchmarks/routing_memory.py (three URLs each). A script that prints figures, not a test.

    .venv/bin/python benchmarks/argocd_routing.py [--pushes 5000]
"""

from __future__ import annotations

import argparse
import gc
import sys
import tracemalloc
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.routing_memory import PROBE_PATH, REPOSITORIES, measure_latency, pushes
from receiver.routing import argocd
from receiver.routing.argocd_index import ArgoIndex

SIZES = (100, 10_000, 100_000)
TARGET_RATIO = 1.2
DESTINATION = {"server": "https://kubernetes.default.svc", "namespace": "default"}


def repo_url(i: int) -> str:
    repo = i % REPOSITORIES
    return f"ssh://git@git.example.com/group-{repo % 97}/repo-{repo:05d}.git"


def raw_application(i: int, *, url: str | None = None) -> dict[str, Any]:
    """An Application as the API returns it (status left out: routing never reads it)."""
    metadata: dict[str, Any] = {
        "name": f"app-{i:06d}",
        "namespace": "argocd",
        "uid": f"7a1c{i:028x}",
        "labels": {"team": f"team-{i % 200:03d}"},
    }
    if i % 10 == 1:
        metadata["annotations"] = {argocd.PATHS_ANNOTATION: ".;/common"}
    source = {"repoURL": url or repo_url(i), "path": f"apps/app-{i % 50}", "targetRevision": "HEAD"}
    spec: dict[str, Any] = {"project": "default", "destination": DESTINATION}
    if i % 10 == 2:
        values = {"repoURL": repo_url(i + 1), "targetRevision": "main", "ref": "values"}
        spec["sources"] = [source, values]
    else:
        spec["source"] = source
    return {
        "apiVersion": argocd.API_VERSION,
        "kind": "Application",
        "metadata": metadata,
        "spec": spec,
    }


def raw_application_set(i: int) -> dict[str, Any]:
    generator = {
        "git": {"repoURL": repo_url(i), "revision": "HEAD", "directories": [{"path": "*"}]}
    }
    return {
        "apiVersion": argocd.API_VERSION,
        "kind": "ApplicationSet",
        "metadata": {"name": f"set-{i:06d}", "namespace": "argocd"},
        "spec": {"generators": [generator], "template": {"metadata": {}, "spec": {}}},
    }


def build(size: int) -> ArgoIndex:
    index = ArgoIndex()
    for i in range(size):
        for raw in (raw_application(i), *((raw_application_set(i),) if i % 100 == 0 else ())):
            record = argocd.record_from_object(raw)
            assert record is not None
            index.upsert(record)
    probe = argocd.record_from_object(
        raw_application(size, url=f"https://git.example.com/{PROBE_PATH}.git")
    )
    assert probe is not None
    index.upsert(probe)
    return index


def bytes_per_object(size: int) -> float:
    build(100)  # warm the module caches first
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    index = build(size)
    gc.collect()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    return (after - before) / len(index)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pushes", type=int, default=5000, help="route() calls per size")
    args = parser.parse_args()
    print(
        f"{'apps':>8}  {'bytes/object':>12}  {'median':>9}  {'p99':>9}  {'targets':>7}"
        f"  {'probe median':>12}  {'probe p99':>9}"
    )
    probes: dict[int, float] = {}
    for size in SIZES:
        per_object = bytes_per_object(size)
        index = build(size)
        median, p99, targets = measure_latency(
            index,  # type: ignore[arg-type]  # duck-typed: route(push)
            pushes(args.pushes, size=size, probe=False),
        )
        probe_median, probe_p99, _ = measure_latency(
            index,  # type: ignore[arg-type]
            pushes(args.pushes, size=size, probe=True),
        )
        probes[size] = probe_median
        print(
            f"{size:>8}  {per_object:>12.0f}  {median:>7.1f}µs  {p99:>7.1f}µs  {targets:>7.1f}"
            f"  {probe_median:>10.1f}µs  {probe_p99:>7.1f}µs"
        )
        del index
    ratio = probes[SIZES[-1]] / probes[SIZES[0]]
    verdict = "met" if ratio <= TARGET_RATIO else "NOT met"
    print(
        f"median route() to a one-object repository at {SIZES[-1]:,} / at {SIZES[0]:,} "
        f"Applications: {ratio:.2f}x (target <= {TARGET_RATIO}x: {verdict})"
    )


if __name__ == "__main__":
    main()
