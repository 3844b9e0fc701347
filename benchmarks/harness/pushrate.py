"""The highest steady push rate a server sustains with webhook -> patch p99 under a bound.

Each step offers pushes at a fixed rate (harness/rate.py, open loop) for a fixed time, spread
over the sampled repositories; a watch on the API server records every reconcile annotation
that lands. A push counts as landed on an object at the first annotation whose own timestamp
(the requestedAt value the server wrote) is not older than the push: a reconcile requested
before the push would fetch an older commit. A push's latency is the slowest of its objects;
an error answer or a push never landed counts as infinitely late. Rates rise geometrically
until a step misses the bound, then two bisection steps narrow the answer.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
from calendar import timegm
from dataclasses import dataclass

from benchmarks.harness.bed import Bed
from benchmarks.harness.cluster import Landed, quiet, watching
from benchmarks.harness.load import percentile, write_entries
from benchmarks.harness.payloads import Entry
from benchmarks.harness.processes import OTHERS_CPU, PYTHON, Children

RATES = (25, 50, 100, 200, 400, 800, 1600, 3200)
BISECTIONS = 2
DRAIN_LIMIT_S = 20.0
_STAMP = re.compile(
    r"(\d{4})-(\d\d)-(\d\d)[T ](\d\d):(\d\d):(\d\d)(?:\.(\d+))?\s*(Z|[+-]\d\d:?\d\d)?"
)


def stamp_seconds(value: str) -> float | None:
    """Seconds since the epoch of a requestedAt value: RFC 3339 (ours), or Go's
    `time.Time.String()` form `2026-11-30 10:00:00.123 +0000 UTC` (Flux's)."""
    match = _STAMP.match(value)
    if match is None:
        return None
    year, month, day, hour, minute, second = (int(x) for x in match.groups()[:6])
    seconds = timegm((year, month, day, hour, minute, second, 0, 0, 0))
    fraction = float("0." + match.group(7)) if match.group(7) else 0.0
    offset = match.group(8)
    if offset and offset != "Z":
        sign = -1 if offset[0] == "-" else 1
        digits = offset[1:].replace(":", "")
        seconds -= sign * (int(digits[:2]) * 3600 + int(digits[2:]) * 60)
    return seconds + fraction


@dataclass
class Step:
    rate: float
    pushes: int
    errors: int
    not_landed: int
    p50_s: float
    p99_s: float
    sender_lag_s: float

    def passed(self, bound_s: float) -> bool:
        return self.pushes > 0 and self.p99_s < bound_s and self.sender_lag_s < 0.5


def push_latencies(
    pushes: list[list[float]], *, members: list[list[tuple[str, str]]], landed: Landed
) -> list[float]:
    """Per push (entry index, wall-clock send, status, answer s): seconds until every object of
    its repository has a reconcile requested no earlier than the push; inf if never."""
    parsed: dict[tuple[str, str], list[tuple[float, float]]] = {}
    latencies = []
    for index, sent, status, _answer_s in pushes:
        if status != 200:
            latencies.append(math.inf)
            continue
        worst = 0.0
        for key in members[int(index)]:
            if key not in parsed:
                parsed[key] = [
                    (arrived, stamp)
                    for arrived, value in landed.stamps.get(key, [])
                    if (stamp := stamp_seconds(value)) is not None
                ]
            first = next((a for a, stamp in parsed[key] if stamp >= sent - 0.0005), None)
            worst = max(worst, math.inf if first is None else first - sent)
        latencies.append(worst)
    return latencies


async def run_step(
    bed: Bed,
    *,
    base_url: str,
    entries: list[Entry],
    members: list[list[tuple[str, str]]],
    rate: float,
    duration_s: float,
    run_id: str,
) -> Step:
    data = bed.work / f"rate-{run_id}.json"
    out = bed.work / f"rate-{run_id}-out.json"
    write_entries(data, entries)
    async with watching(bed.api) as landed:
        await quiet(landed, idle_s=1.0, limit_s=60)
        proc = bed.children.start(
            [
                PYTHON,
                "-m",
                "benchmarks.harness.rate",
                "--url",
                base_url,
                "--entries",
                str(data),
                "--rate",
                str(rate),
                "--duration-s",
                str(duration_s),
                "--out",
                str(out),
                "--run-id",
                run_id,
            ],
            log=bed.work / f"rate-{run_id}.log",
            cpus=OTHERS_CPU,
        )
        try:
            await asyncio.to_thread(proc.wait, duration_s + 60)
        finally:
            Children.stop(proc)
        await quiet(landed, idle_s=2.0, limit_s=DRAIN_LIMIT_S)
    result = json.loads(out.read_text())
    pushes = result["pushes"]
    latencies = sorted(push_latencies(pushes, members=members, landed=landed))
    return Step(
        rate=rate,
        pushes=len(pushes),
        errors=sum(1 for push in pushes if push[2] != 200),
        not_landed=sum(1 for x in latencies if x == math.inf),
        p50_s=percentile(latencies, 50),
        p99_s=percentile(latencies, 99),
        sender_lag_s=float(result["lag_s"]),
    )


async def sustainable_rate(
    bed: Bed,
    *,
    label: str,
    base_url: str,
    entries: list[Entry],
    members: list[list[tuple[str, str]]],
    duration_s: float,
    bound_s: float = 1.0,
) -> tuple[float, list[Step]]:
    """The highest rate whose step kept webhook -> patch p99 under `bound_s` (0 if none)."""
    steps: list[Step] = []
    best, failed = 0.0, 0.0

    async def step(rate: float) -> bool:
        result = await run_step(
            bed,
            base_url=base_url,
            entries=entries,
            members=members,
            rate=rate,
            duration_s=duration_s,
            run_id=f"{label.split()[0]}-{len(steps)}",
        )
        steps.append(result)
        ok = result.passed(bound_s)
        print(
            f"  {label}: {rate:,.0f} pushes/s for {duration_s:.0f}s: webhook->patch p50 "
            f"{result.p50_s * 1000:,.0f} ms, p99 {result.p99_s * 1000:,.0f} ms, "
            f"{result.errors} errors, {result.not_landed} not landed, sender behind by "
            f"{result.sender_lag_s:.2f}s: {'ok' if ok else 'over the bound'}",
            flush=True,
        )
        return ok

    for rate in RATES:
        if await step(rate):
            best = rate
        else:
            failed = rate
            break
    if best and failed:
        for _ in range(BISECTIONS):
            middle = round(math.sqrt(best * failed))
            if await step(middle):
                best = middle
            else:
                failed = middle
    return best, steps
