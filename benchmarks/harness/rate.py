"""Open-loop load: signed pushes offered at a fixed rate, not as fast as the server answers.

Push k leaves at start + k / rate whatever became of the earlier ones (each on its own task,
over up to 1,024 connections), so a slow server builds a backlog instead of slowing the
sender. Writes one JSON record per push (entry index, wall-clock send time, status, answer
seconds) and how far behind schedule the sender itself fell. Run as
`python -m benchmarks.harness.rate --url ... --entries FILE --rate R --duration-s D --out FILE`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import time
from pathlib import Path

import aiohttp

MAX_CONNECTIONS = 1024
ANSWER_TIMEOUT_S = 30.0


async def offer(args: argparse.Namespace, entries: list[dict[str, str]]) -> dict[str, object]:
    rng = random.Random(args.seed)
    total = int(args.rate * args.duration_s)
    records: list[list[float]] = []
    lag_s = 0.0
    connector = aiohttp.TCPConnector(limit=MAX_CONNECTIONS)
    timeout = aiohttp.ClientTimeout(total=ANSWER_TIMEOUT_S)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def one(k: int, index: int) -> None:
            entry = entries[index]
            headers = {
                "Content-Type": "application/json",
                "X-GitHub-Event": "push",
                "X-GitHub-Delivery": f"{args.run_id}-{k}",
                "X-Hub-Signature-256": entry["sig"],
            }
            sent_wall, sent = time.time(), time.monotonic()
            status = 0
            with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                async with session.post(
                    args.url + entry["path"], data=entry["body"].encode(), headers=headers
                ) as response:
                    await response.read()
                    status = response.status
            records.append([index, sent_wall, status, time.monotonic() - sent])

        tasks = []
        start = time.monotonic()
        for k in range(total):
            delay = start + k / args.rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            else:
                lag_s = max(lag_s, -delay)
            tasks.append(asyncio.create_task(one(k, rng.randrange(len(entries)))))
        await asyncio.gather(*tasks)
    return {"lag_s": lag_s, "pushes": records}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--entries", required=True)
    parser.add_argument("--rate", type=float, required=True)
    parser.add_argument("--duration-s", type=float, required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--run-id", required=True)
    parser.add_argument("--seed", type=int, default=13)
    args = parser.parse_args()
    entries = json.loads(Path(args.entries).read_text())
    Path(args.out).write_text(json.dumps(asyncio.run(offer(args, entries))))


if __name__ == "__main__":
    main()
