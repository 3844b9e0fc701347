"""The load generator: `wrk` with a Lua script, else a closed-loop Python client, as a separate
process on CPU 1 at a fixed concurrency; `run_load` returns its one result line. Each request
picks a signed push at random and carries a fresh X-GitHub-Delivery. The Python client runs as
`python -m benchmarks.harness.load --url ... --entries FILE ...`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import resource
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from benchmarks.harness.payloads import Entry
from benchmarks.harness.processes import OTHERS_CPU, PYTHON, Children, log_tail

WRK_LUA = r"""
local entries = {
%(entries)s
}
local counter = 0
local prefix = "w"
function init(args)
  prefix = args[1] or "w"
  math.randomseed(tonumber(args[2]) or 1)
end
function request()
  counter = counter + 1
  local e = entries[math.random(#entries)]
  return wrk.format("POST", e[1], {
    ["Content-Type"] = "application/json",
    ["X-GitHub-Event"] = "push",
    ["X-GitHub-Delivery"] = prefix .. "-" .. counter,
    ["X-Hub-Signature-256"] = e[3],
  }, e[2])
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_RESULT {"requests":%%d,"duration_s":%%f,"errors":%%d,"p50_ms":%%f,"p90_ms":%%f,' ..
    '"p99_ms":%%f,"max_ms":%%f}\n',
    summary.requests, summary.duration / 1e6,
    e.status + e.connect + e.read + e.write + e.timeout,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000))
end
"""


def write_wrk_script(path: Path, entries: list[Entry]) -> None:
    rows = []
    for entry in entries:
        body = entry.body.decode()
        assert "]==]" not in body
        rows.append(f'  {{"{entry.path}", [==[{body}]==], "{entry.sig}"}},')
    path.write_text(WRK_LUA % {"entries": "\n".join(rows)})


def write_entries(path: Path, entries: list[Entry]) -> None:
    path.write_text(
        json.dumps([{"path": e.path, "body": e.body.decode(), "sig": e.sig} for e in entries])
    )


@dataclass
class LoadResult:
    requests: int
    duration_s: float
    errors: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    cpu_s: float = 0.0  # CPU seconds of the load generator process

    @property
    def rps(self) -> float:
        return self.requests / self.duration_s if self.duration_s else 0.0


async def run_load(
    *,
    children: Children,
    tool: str,
    work: Path,
    base_url: str,
    entries: list[Entry],
    concurrency: int,
    duration_s: float,
    run_id: str,
) -> LoadResult:
    """Run the load generator as a separate process on CPU 1; parse its one result line."""
    log = work / f"load-{run_id}.log"
    if tool == "wrk":
        script = work / f"load-{run_id}.lua"
        write_wrk_script(script, entries)
        args = [
            "wrk",
            "-t1",
            f"-c{concurrency}",
            f"-d{max(1, round(duration_s))}s",
            "--timeout",
            "30s",
            "-s",
            str(script),
            base_url,
            "--",
            run_id,
            "7",
        ]
        marker = "WRK_RESULT "
    else:
        data = work / f"load-{run_id}.json"
        write_entries(data, entries)
        args = [
            PYTHON,
            "-m",
            "benchmarks.harness.load",
            "--url",
            base_url,
            "--entries",
            str(data),
            "--concurrency",
            str(concurrency),
            "--duration-s",
            str(duration_s),
            "--run-id",
            run_id,
        ]
        marker = "LOADGEN_RESULT "
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = children.start(args, log=log, cpus=OTHERS_CPU)
    with contextlib.suppress(subprocess.TimeoutExpired):
        await asyncio.to_thread(proc.wait, duration_s + 60)
    Children.stop(proc)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu_s = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    for line in log.read_text(errors="replace").splitlines():
        if line.startswith(marker):
            return LoadResult(**json.loads(line[len(marker) :]), cpu_s=cpu_s)
    raise RuntimeError(f"load generator gave no result; log tail:\n{log.read_text()[-2000:]}")


async def generate(args: argparse.Namespace) -> None:
    """Closed-loop aiohttp client at a fixed concurrency (used when wrk is absent)."""
    entries = [
        Entry(e["path"], e["body"].encode(), e["sig"])
        for e in json.loads(log_tail(Path(args.entries), lines=0))
    ]
    rng = random.Random(7)
    latencies: list[float] = []
    errors = 0
    counter = 0
    connector = aiohttp.TCPConnector(limit=args.concurrency)
    async with aiohttp.ClientSession(
        connector=connector, timeout=aiohttp.ClientTimeout(total=30)
    ) as session:
        start = time.monotonic()
        deadline = start + args.duration_s

        async def worker() -> None:
            nonlocal errors, counter
            while time.monotonic() < deadline:
                entry = entries[rng.randrange(len(entries))]
                counter += 1
                headers = {
                    "Content-Type": "application/json",
                    "X-GitHub-Event": "push",
                    "X-GitHub-Delivery": f"{args.run_id}-{counter}",
                    "X-Hub-Signature-256": entry.sig,
                }
                sent = time.monotonic()
                try:
                    async with session.post(
                        args.url + entry.path, data=entry.body, headers=headers
                    ) as response:
                        await response.read()
                        if response.status >= 400:
                            errors += 1
                except (aiohttp.ClientError, TimeoutError):
                    errors += 1
                latencies.append(time.monotonic() - sent)

        await asyncio.gather(*(worker() for _ in range(args.concurrency)))
        elapsed = time.monotonic() - start
    latencies.sort()
    result = {
        "requests": len(latencies),
        "duration_s": elapsed,
        "errors": errors,
        "p50_ms": percentile(latencies, 50) * 1000,
        "p90_ms": percentile(latencies, 90) * 1000,
        "p99_ms": percentile(latencies, 99) * 1000,
        "max_ms": (latencies[-1] if latencies else 0.0) * 1000,
    }
    print("LOADGEN_RESULT " + json.dumps(result), flush=True)


def percentile(ordered: list[float], p: float) -> float:
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, int(len(ordered) * p / 100))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--entries", required=True)
    parser.add_argument("--concurrency", type=int, required=True)
    parser.add_argument("--duration-s", type=float, required=True)
    parser.add_argument("--run-id", required=True)
    asyncio.run(generate(parser.parse_args()))


if __name__ == "__main__":
    main()
