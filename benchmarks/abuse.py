"""Benchmark: 100,000 mixed deliveries, most of them hostile, against the running service.

Starts kube-apiserver + etcd (seeded with GitRepositories), then gitops-receiver as its own
process (discovery endpoint `/webhooks/github`, default limits, 127.0.0.0/8 trusted as the
proxy so each simulated client has its own X-Forwarded-For address), and sends from many
connections at once a shuffled mix of: valid signed pushes, bad signatures, malformed requests
(broken JSON, broken HTTP), oversized bodies, uploads aborted mid-body, slow clients sending
their headers a byte at a time, replays of delivered pushes and bodies with a 5,000-digit
integer. A watch on the API server records every reconcile annotation that lands.

Prints, per kind: sent, answers by status, accepted, and for valid pushes the objects whose
patch was expected against those patched after their last accepted delivery; the valid
deliveries' p50/p99 latency; the service's peak and final RSS and its open descriptors.
Targets: no 5xx, no accepted delivery without its patch, valid p99 < 250 ms while the abuse
runs, RSS back within 50 MB of its start once the clients are gone. Bounded in count and time;
everything listens on 127.0.0.1.

    .venv/bin/python benchmarks/abuse.py [--deliveries 100000] [--rate 400] [--concurrency 200]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import hashlib
import hmac
import json
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.harness import bed as beds
from benchmarks.harness import servers
from benchmarks.harness.cluster import quiet, scrape, watching
from benchmarks.harness.payloads import TOKEN, object_name, push_body, repo_path, signature
from benchmarks.harness.processes import rss_mib

# Share of each kind in the mix (sums to 1).
MIX = {
    "valid": 0.40,
    "bad_signature": 0.12,
    "malformed": 0.10,
    "oversized": 0.05,
    "aborted": 0.10,
    "slow": 0.01,
    "replayed": 0.12,
    "huge_integer": 0.10,
}
SLOW_CONCURRENCY = 100
TARGET_P99_MS = 250.0
TARGET_RSS_MB = 50.0


@dataclass
class Tally:
    sent: int = 0
    statuses: collections.Counter[str] = field(default_factory=collections.Counter)
    accepted: int = 0


@dataclass
class Run:
    port: int
    repos: int
    objects: int
    tallies: dict[str, Tally] = field(default_factory=lambda: {k: Tally() for k in MIX})
    valid_latency_ms: list[float] = field(default_factory=list)
    # object key -> monotonic send time of its last accepted delivery
    last_accepted: dict[tuple[str, str], float] = field(default_factory=dict)
    accepted_sends: list[tuple[float, int]] = field(default_factory=list)  # (sent at, repo)
    # The last valid deliveries: replays pick one of them, well inside the 60 s dedupe window.
    delivered: collections.deque[tuple[bytes, dict[str, str]]] = field(
        default_factory=lambda: collections.deque(maxlen=500)
    )
    seq: int = 0

    def next_seq(self) -> int:
        self.seq += 1
        return self.seq


def forwarded(kind: str, rng: random.Random) -> str:
    """Forges come from 256 addresses, attackers from 256 others (documentation ranges)."""
    net = "198.51.100" if kind in ("valid", "replayed") else "203.0.113"
    return f"{net}.{rng.randrange(256)}"


def headers_for(body: bytes, *, delivery: str, sig: str, client: str) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "X-GitHub-Event": "push",
        "X-GitHub-Delivery": delivery,
        "X-Hub-Signature-256": sig,
        "X-Forwarded-For": client,
    }


def members(repo: int, run: Run) -> list[tuple[str, str]]:
    return [object_name(i) for i in range(repo, run.objects, run.repos)]


async def raw_request(port: int, data: bytes, *, abort_after: bool = False) -> str:
    """Send bytes on a fresh connection; the answer's status, or 'none' when there is none."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        await writer.drain()
        if abort_after:
            writer.transport.abort()
            return "none"
        line = await asyncio.wait_for(reader.readline(), 30)
        parts = line.split()
        return parts[1].decode() if len(parts) >= 2 else "none"
    except (OSError, TimeoutError):
        return "none"
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


async def slow_client(port: int, client: str) -> str:
    """Headers a byte at a time, every 0.5 s, until the server cuts the connection."""
    text = (
        f"POST /webhooks/github HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: {client}\r\n"
        "X-GitHub-Event: push\r\n" + "X-Padding: " + "a" * 200 + "\r\n\r\n"
    ).encode()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        for byte in text:
            writer.write(bytes([byte]))
            await writer.drain()
            with contextlib.suppress(TimeoutError):
                line = await asyncio.wait_for(reader.readline(), 0.5)
                parts = line.split()
                return parts[1].decode() if len(parts) >= 2 else "closed"
        return "none"
    except OSError:
        return "closed"
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


async def send_one(kind: str, run: Run, session: aiohttp.ClientSession, rng: random.Random) -> None:
    tally = run.tallies[kind]
    tally.sent += 1
    client = forwarded(kind, rng)
    url = f"http://127.0.0.1:{run.port}/webhooks/github"
    if kind in ("oversized", "aborted") or (kind == "malformed" and rng.random() < 0.5):
        if kind == "oversized":
            data = (
                "POST /webhooks/github HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                f"X-Forwarded-For: {client}\r\nContent-Length: {30 * 1024 * 1024}\r\n\r\n"
            ).encode() + b"{" * 65536
            status = await raw_request(run.port, data)
        elif kind == "aborted":
            data = (
                "POST /webhooks/github HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                f"X-Forwarded-For: {client}\r\nContent-Length: {1024 * 1024}\r\n\r\n"
            ).encode() + b" " * (256 * 1024)
            status = await raw_request(run.port, data, abort_after=True)
        else:  # broken HTTP: a control character in a header, a bad request line
            data = rng.choice(
                [
                    f"POST /webhooks/github HTTP/1.1\r\nX-Hub-Signature-256: {TOKEN}\x7f\r\n\r\n",
                    "BREW /webhooks/github HTCPCP/1.0\r\n\r\n",
                    "POST /webhooks/github HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
                ]
            ).encode()
            status = await raw_request(run.port, data)
        tally.statuses[status] += 1
        return
    repo = rng.randrange(run.repos)
    seq = run.next_seq()
    if kind == "replayed" and run.delivered:
        body, headers = rng.choice(run.delivered)
        headers = {**headers, "X-Forwarded-For": client}
    else:
        body = push_body(repo_path(repo), seq=seq)
        sig = signature(body)
        if kind == "bad_signature":
            sig = "sha256=" + hmac.new(b"not-the-secret", body, hashlib.sha256).hexdigest()
        elif kind == "malformed":
            body = body[: len(body) // 2]
            sig = signature(body)
        elif kind == "huge_integer":
            body = body[:-1] + b', "n": 1' + b"7" * 5000 + b"}"
            sig = signature(body)
        headers = headers_for(body, delivery=f"abuse-{seq}", sig=sig, client=client)
    started = time.monotonic()
    try:
        async with session.post(url, data=body, headers=headers) as response:
            answer = await response.read()
            status = str(response.status)
    except (aiohttp.ClientError, TimeoutError):
        tally.statuses["none"] += 1
        return
    tally.statuses[status] += 1
    if kind == "valid":
        run.valid_latency_ms.append((time.monotonic() - started) * 1000)
    with contextlib.suppress(ValueError):
        if response.status == 200 and json.loads(answer).get("status") == "accepted":
            tally.accepted += 1
            for key in members(repo, run):
                run.last_accepted[key] = started
            if kind == "valid":
                run.delivered.append((body, headers))


async def sample_rss(pid: int, peak: list[float], stop: asyncio.Event) -> None:
    while not stop.is_set():
        with contextlib.suppress(OSError):
            peak[0] = max(peak[0], rss_mib(pid))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.25)


def open_fds(pid: int) -> int:
    return len(list(Path(f"/proc/{pid}/fd").iterdir()))


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))] if ordered else float("nan")


async def drive(args: argparse.Namespace) -> None:
    async with beds.open_bed(args) as bed:
        await bed.cluster.seed(args.objects, repos=args.repos, concurrency=args.seed_concurrency)
        proc, ports = await servers.start_ours(
            bed,
            tag="abuse",
            workers=args.workers,
            log_level=args.log_level,
            extra_config={"limits": {"trusted_proxies": ["127.0.0.0/8"]}},
        )
        pid = proc.pid
        await asyncio.sleep(2)
        rss_start, fds_start = rss_mib(pid), open_fds(pid)
        rng = random.Random(17)
        kinds = [k for k, share in MIX.items() for _ in range(round(share * args.deliveries))]
        rng.shuffle(kinds)
        slow = [k for k in kinds if k == "slow"]
        fast = collections.deque(k for k in kinds if k != "slow")
        run = Run(port=ports["webhook"], repos=args.repos, objects=args.objects)
        peak = [rss_start]
        stop = asyncio.Event()
        sampler = asyncio.create_task(sample_rss(pid, peak, stop))
        print(
            f"sending {len(kinds):,} deliveries at {args.rate:.0f}/s ({args.concurrency} "
            f"connections, {SLOW_CONCURRENCY} slow clients)...",
            flush=True,
        )
        deadline = time.monotonic() + args.time_limit
        async with (
            watching(bed.api) as landed,
            aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=args.concurrency),
                timeout=aiohttp.ClientTimeout(total=60),
            ) as session,
        ):
            started = time.monotonic()

            slot = [time.monotonic()]

            async def worker() -> None:
                # Open loop: one delivery every 1/rate s across all connections, so latency is
                # the service's, not a queue this driver builds in front of it.
                while fast and time.monotonic() < deadline:
                    slot[0] = max(slot[0] + 1 / args.rate, time.monotonic() - 1)
                    await asyncio.sleep(max(0.0, slot[0] - time.monotonic()))
                    if fast:
                        await send_one(fast.popleft(), run, session, rng)

            async def slow_worker() -> None:
                while slow and time.monotonic() < deadline:
                    slow.pop()
                    run.tallies["slow"].sent += 1
                    status = await slow_client(run.port, forwarded("slow", rng))
                    run.tallies["slow"].statuses[status] += 1

            await asyncio.gather(
                *(worker() for _ in range(args.concurrency)),
                *(slow_worker() for _ in range(SLOW_CONCURRENCY)),
            )
            elapsed = time.monotonic() - started
            # Until the reconcile queue is empty and nothing has landed for 5 s (bounded).
            metrics_url = f"http://127.0.0.1:{ports['metrics']}/metrics"
            settle_deadline = time.monotonic() + 300
            while time.monotonic() < settle_deadline:
                await quiet(landed, idle_s=5.0, limit_s=60)
                metrics = await scrape(metrics_url)
                if metrics.get("gitops_receiver_reconcile_queue_depth", 0) == 0:
                    break
        # The clients are gone: let the service settle (idle keep-alive closes after 15 s).
        await asyncio.sleep(20)
        stop.set()
        await sampler
        rss_end, fds_end = rss_mib(pid), open_fds(pid)
        report(
            run,
            landed.times,
            metrics=metrics,
            elapsed=elapsed,
            rss=(rss_start, peak[0], rss_end),
            fds=(fds_start, fds_end),
        )


def report(
    run: Run,
    landings: dict[tuple[str, str], list[float]],
    *,
    metrics: dict[str, float],
    elapsed: float,
    rss: tuple[float, float, float],
    fds: tuple[int, int],
) -> None:
    sent = sum(t.sent for t in run.tallies.values())
    print(f"\n{sent:,} deliveries in {elapsed:.0f} s ({sent / elapsed:,.0f}/s)\n")
    print("| kind | sent | answers by status | accepted |")
    print("|---|---|---|---|")
    fivexx = 0
    for kind, tally in run.tallies.items():
        statuses = ", ".join(f"{s}: {n:,}" for s, n in sorted(tally.statuses.items()))
        fivexx += sum(n for s, n in tally.statuses.items() if s.startswith("5"))
        print(f"| {kind} | {tally.sent:,} | {statuses} | {tally.accepted:,} |")
    missing = [key for key, at in run.last_accepted.items() if max(landings.get(key, [0.0])) < at]
    outcomes = collections.Counter[str]()
    for key, value in metrics.items():
        if key.startswith("gitops_receiver_reconcile_requests_total{"):
            outcomes[key.split('outcome="')[1].split('"')[0]] += int(value)
    patched = outcomes["patched"]
    p50, p99 = percentile(run.valid_latency_ms, 0.50), percentile(run.valid_latency_ms, 0.99)
    refused = {
        k: v
        for k, v in metrics.items()
        if "limit_refusals_total" in k or "connections_closed_total" in k
    }
    print(
        f"\nobjects to patch (accepted deliveries): {len(run.last_accepted):,}; patched after their"
        f" last accepted delivery: {len(run.last_accepted) - len(missing):,}; reconcile patches"
        f" made: {patched:,.0f} (annotations seen landing: {sum(map(len, landings.values())):,})"
    )
    print(
        "reconcile requests by outcome: "
        + ", ".join(f"{k} {v:,.0f}" for k, v in sorted(outcomes.items()))
    )
    print(f"valid deliveries: p50 {p50:.1f} ms, p99 {p99:.1f} ms")
    print(f"RSS: start {rss[0]:.0f} MiB, peak {rss[1]:.0f} MiB, end {rss[2]:.0f} MiB")
    print(f"open descriptors: start {fds[0]}, end {fds[1]}")
    for key, value in sorted(refused.items()):
        print(f"  {key.removeprefix('gitops_receiver_')} {value:,.0f}")
    print("\n| target | measured | |")
    print("|---|---|---|")
    print(f"| 0 answers 5xx | {fivexx} | {'met' if fivexx == 0 else 'NOT met'} |")
    print(
        f"| 0 accepted deliveries without their patch | {len(missing)} |"
        f" {'met' if not missing else 'NOT met'} |"
    )
    print(
        f"| valid p99 < {TARGET_P99_MS:.0f} ms | {p99:.1f} ms |"
        f" {'met' if p99 < TARGET_P99_MS else 'NOT met'} |"
    )
    grown = rss[2] - rss[0]
    print(
        f"| RSS within {TARGET_RSS_MB:.0f} MB of its start | {grown:+.0f} MiB |"
        f" {'met' if grown * 1.048576 < TARGET_RSS_MB else 'NOT met'} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    beds.add_common_arguments(parser, objects=[2000])
    parser.set_defaults(repos=1000)
    parser.add_argument("--deliveries", type=int, default=100_000)
    parser.add_argument("--concurrency", type=int, default=200, help="connections at once")
    parser.add_argument(
        "--rate", type=float, default=400, help="deliveries per second, all kinds (default 400)"
    )
    parser.add_argument("--time-limit", type=float, default=900, help="seconds (default 900)")
    args = parser.parse_args()
    args.objects = args.objects[-1]
    beds.run(drive, args)


if __name__ == "__main__":
    main()
