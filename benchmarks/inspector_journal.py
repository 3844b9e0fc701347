"""Benchmark: what the delivery inspector adds to each delivery, in-process.

Per delivery the webhook edge turns the pipeline's Delivery record into a journal entry and adds
it (`capture.entry_for` + `Journal.add`); later the reconcile workers settle each target
(`patch_started` + `patch_finished`). This times both for a discovery push with 3 targets and
2 skipped objects (pushes to 100 repositories in turn), with the journal full (the default 1,000 entries, so each add also drops the
oldest), and prints the median of 5 rounds in microseconds of CPU time (process_time: the
figure holds on a busy machine) per delivery, plus the journal's
memory at capacity (tracemalloc). Rendering is timed too: the list page and the JSON list of a
full journal. No server, no cluster.

    .venv/bin/python benchmarks/inspector_journal.py [--deliveries 20000] [--capacity 1000]
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from receiver.events import GitPush, ObjectRef
from receiver.inspector import capture, views
from receiver.inspector.journal import Filter, Journal, PatchState
from receiver.inspector.tracker import object_key
from receiver.pipeline import DISCOVERY_PATH, Delivery, Outcome
from receiver.routing.index import Skip, SkipCause

API = "source.toolkit.fluxcd.io/v1"
# Pushes come from a few repositories again and again (routing caches their normalised URLs).
REPOSITORIES = 100


def record(index: int) -> Delivery:
    targets = tuple(ObjectRef(API, "GitRepository", "apps", f"repo-{index}-{n}") for n in range(3))
    skipped = tuple(
        Skip(
            ObjectRef(API, "GitRepository", "apps", f"skip-{index}-{n}"),
            SkipCause.REF,
            "branch dev",
        )
        for n in range(2)
    )
    push = GitPush(
        source="github",
        event="push",
        repo_urls=(f"https://github.com/org/repo-{index % REPOSITORIES}.git",),
        ref="refs/heads/main",
        after=f"{index:040x}",
        delivery_id=f"d-{index}",
    )
    return Delivery(
        DISCOVERY_PATH,
        endpoint="github",
        source="github",
        event_type="push",
        events=(push,),
        outcome=Outcome.ACCEPTED,
        targets=targets,
        skipped=skipped,
    )


def one_round(records: list[Delivery], capacity: int) -> tuple[float, float]:
    """(µs per delivery to record, µs per delivery to settle its 3 patches)."""
    journal = Journal(capacity=capacity)
    for warm in records[:capacity]:
        journal.add(
            capture.entry_for(
                warm, http_status=200, outcome="accepted", latency_ms=1.0, received_at_s=0.0
            )
        )
    gc.disable()
    started = time.process_time()
    for item in records:
        journal.add(
            capture.entry_for(
                item, http_status=200, outcome="accepted", latency_ms=1.0, received_at_s=0.0
            )
        )
    recorded = time.process_time() - started
    started = time.process_time()
    for item in records:
        for target in item.targets:
            key = object_key(target)
            journal.patch_started(key)
            journal.patch_finished(key, state=PatchState.PATCHED, attempts=1)
    settled = time.process_time() - started
    gc.enable()
    return recorded / len(records) * 1e6, settled / len(records) * 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deliveries", type=int, default=20_000)
    parser.add_argument("--capacity", type=int, default=1_000)
    args = parser.parse_args()
    records = [record(i) for i in range(args.deliveries)]
    rounds = [one_round(records, args.capacity) for _ in range(5)]
    print(f"deliveries per round: {args.deliveries}, journal capacity: {args.capacity}")
    print(
        f"record (entry_for + add):            {statistics.median(r[0] for r in rounds):7.2f} µs per delivery"
    )
    print(
        f"settle 3 patches (started+finished): {statistics.median(r[1] for r in rounds):7.2f} µs per delivery"
    )

    tracemalloc.start()
    journal = Journal(capacity=args.capacity)
    for item in records[: args.capacity]:
        journal.add(
            capture.entry_for(
                item, http_status=200, outcome="accepted", latency_ms=1.0, received_at_s=0.0
            )
        )
    size, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(
        f"journal memory at capacity:          {size / 1024 / 1024:7.2f} MiB ({size / args.capacity / 1024:.1f} KiB per delivery)"
    )

    started = time.process_time()
    page = views.render_list(journal, selection=Filter(), replica="bench")
    page_ms = (time.process_time() - started) * 1000
    started = time.process_time()
    views.list_json(journal, selection=Filter(), replica="bench")
    json_ms = (time.process_time() - started) * 1000
    print(
        f"list page of a full journal:         {page_ms:7.2f} ms ({len(page) / 1024:.0f} KiB of HTML)"
    )
    print(f"JSON list of a full journal:         {json_ms:7.2f} ms (before encoding)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
