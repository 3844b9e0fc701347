"""Benchmark: CPU per delivery through the pipeline's stages alone, without a server.

One recorded GitHub push (signed) goes `--deliveries` times through `Pipeline.handle_hook`
(a github Receiver with one GitRepository) and `Pipeline.handle_discovery` (the github endpoint,
routed to the GitRepository and the Kustomization reading it), on the dry-run inventory of
`tests/support/pipeline_bed.py`. Deduplication is off so every delivery runs every stage; the
reconcile queue collapses the repeated targets and its workers never run. Includes what the
HTTP edge reads back from each record (the answer and the targets of its log line). Prints the
best of `--rounds` rounds in µs of process CPU per delivery: compare builds with the same
command on the same machine (the figure moves with machine load; CPU time less than wall time).

    .venv/bin/python benchmarks/pipeline_cpu.py --deliveries 5000 --rounds 5
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from receiver import logs
from receiver.pipeline import Delivery, Outcome
from tests.support import signed_fixtures as fx
from tests.support.pipeline_bed import make_bed


async def _measure(
    deliver: Callable[[], Awaitable[Delivery]], *, deliveries: int, rounds: int
) -> float:
    """The lowest CPU seconds per delivery over `rounds` rounds."""
    record = await deliver()
    assert record.outcome is Outcome.ACCEPTED, record
    best = float("inf")
    for _ in range(rounds):
        started = time.process_time()
        for _ in range(deliveries):
            record = await deliver()
            record.answer()
            [str(target) for target in record.targets]
        best = min(best, (time.process_time() - started) / deliveries)
    return best


async def _bench(folder: Path, *, deliveries: int, rounds: int) -> None:
    bed = make_bed(folder, queue_size=10 * deliveries, dedupe_window_s=0)
    push = fx.load("github", "push")
    path = bed.path("github")
    paths: dict[str, Callable[[], Awaitable[Delivery]]] = {
        "receiver": lambda: bed.pipeline.handle_hook(path, push),
        "discovery": lambda: bed.pipeline.handle_discovery("github", push),
    }
    print(f"deliveries={deliveries} rounds={rounds} (GitHub push, best round)")
    for name, deliver in paths.items():
        per_delivery_s = await _measure(deliver, deliveries=deliveries, rounds=rounds)
        print(
            f"{name}_path_cpu_us_per_delivery={per_delivery_s * 1e6:.1f} "
            f"({1 / per_delivery_s:,.0f} deliveries per CPU second)"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deliveries", type=int, default=5_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    logs.configure(log_format="json", log_level="info")
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(_bench(Path(tmp), deliveries=args.deliveries, rounds=args.rounds))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
