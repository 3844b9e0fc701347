"""Benchmark: webhook -> patch throughput and latency against a real API server.

Starts kube-apiserver + etcd (tests/envtest.py), seeds N GitRepositories over 10,000
repositories and, for each N, runs gitops-receiver as a separate process (discovery endpoint
`/webhooks/github`) under load from a separate load generator (`wrk`, else a Python client)
sending signed GitHub pushes spread over 1,000 repositories. At 10,000 objects it also drives,
with the same load and payloads, (a) a minimal aiohttp handler that only checks the HMAC and
parses the JSON (the ceiling), and (b) Flux's notification-controller through one Receiver per
repository. Servers under test run on CPU 0, everything else on CPU 1. Webhook -> patch latency
is timed by a watch on the API server for probe objects. Prints one row per server and size,
and the throughput targets. Everything listens on 127.0.0.1; every wait is bounded.

    .venv/bin/python benchmarks/webhook_throughput.py [--objects 100,10000,100000]
        [--duration-s 10] [--concurrency 32] [--skip-flux] [--skip-minimal]

Defaults (100 and 10,000 objects) take about 4 minutes on 2 cores; add 100000 for about 10.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.harness import bed as beds
from benchmarks.harness import servers
from benchmarks.harness.measure import LoadPlan, Row, fmt, latency_summary, measure
from benchmarks.harness.payloads import PROBES, entries_for, sample_repos
from benchmarks.harness.processes import Children, can_pin, rss_mib

TARGET_SHARE_OF_CEILING = 0.5


async def run_ours(bed: beds.Bed, args: argparse.Namespace, plan: LoadPlan, objects: int) -> Row:
    row = Row("gitops-receiver /webhooks/github", objects)
    started = time.monotonic()
    proc, ports = await servers.start_ours(
        bed,
        tag=str(objects),
        workers=args.workers,
        log_level=args.log_level,
        profile_dir=args.profile,
    )
    try:
        row.ready_s = time.monotonic() - started
        await asyncio.sleep(1.0)
        row.rss_mib = rss_mib(proc.pid)
        print(
            f"  gitops-receiver ready after {row.ready_s:.1f}s with {objects:,} objects, "
            f"RSS {row.rss_mib:.0f} MiB, CPUs {sorted(os.sched_getaffinity(proc.pid))}",
            flush=True,
        )
        repos = sample_repos(objects, repos=args.repos, sample=args.sample_repos)
        await measure(
            bed,
            plan=plan,
            row=row,
            base_url=f"http://127.0.0.1:{ports['webhook']}",
            entries=entries_for(repos, dict.fromkeys(repos, "/webhooks/github")),
            probe_paths=["/webhooks/github"] * PROBES,
            server_pid=proc.pid,
        )
    finally:
        Children.stop(proc)
    return row


async def run_minimal(bed: beds.Bed, args: argparse.Namespace, plan: LoadPlan, objects: int) -> Row:
    proc, port = await servers.start_minimal(bed)
    try:
        repos = sample_repos(objects, repos=args.repos, sample=args.sample_repos)
        row = Row("(a) minimal aiohttp HMAC+JSON", objects)
        await measure(
            bed,
            plan=plan,
            row=row,
            base_url=f"http://127.0.0.1:{port}",
            entries=entries_for(repos, dict.fromkeys(repos, "/webhook")),
            probe_paths=None,
            server_pid=proc.pid,
        )
        return row
    finally:
        Children.stop(proc)


async def run_flux(
    bed: beds.Bed, args: argparse.Namespace, plan: LoadPlan, objects: int, notes: list[str]
) -> list[Row]:
    found = servers.flux_binary()
    if isinstance(found, str):
        notes.append(f"(b) not measured: {found}")
        print(f"  (b) skipped: {found}", flush=True)
        return []
    binary, crd_dir = found
    repos = sample_repos(objects, repos=args.repos, sample=args.sample_repos)
    count = await servers.create_flux_receivers(
        bed, crd_dir=crd_dir, objects=objects, repos=repos, repo_count=args.repos
    )
    rows = []
    for label, extra in (
        ("default client limits", []),
        ("--kube-api-qps/burst 10000", ["--kube-api-qps=10000", "--kube-api-burst=10000"]),
    ):
        proc = None
        try:
            proc, port, paths = await servers.start_flux(
                bed, binary=binary, extra=extra, receivers=count
            )
            row = Row(f"(b) notification-controller, {label}", objects)
            await measure(
                bed,
                plan=plan,
                row=row,
                base_url=f"http://127.0.0.1:{port}",
                entries=entries_for(repos, {repo: paths[f"repo-{repo:05d}"] for repo in repos}),
                probe_paths=[paths[f"probe-{k:02d}"] for k in range(PROBES)],
                server_pid=proc.pid,
            )
            rows.append(row)
        except RuntimeError as exc:
            notes.append(f"(b) {label} failed: {exc}")
            print(f"  (b) {label} failed: {exc}", flush=True)
        finally:
            if proc is not None:
                Children.stop(proc)
    return rows


def report(rows: list[Row], *, reference: int, workers: int, notes: list[str]) -> None:
    print()
    print("=" * 110)
    print(
        f"{'row':<46} {'objects':>8} {'req/s':>7} {'srv cores':>9} {'req/CPU-s':>9} "
        f"{'answer p50/p90/p99 ms':>21} {'err':>4} {'patches/s':>9}"
    )
    for row in rows:
        load = row.load
        assert load is not None
        print(
            f"{row.name:<46} {row.objects:>8,} {load.rps:>7,.0f} {row.server_cores:>9.2f} "
            f"{load.rps / row.server_cores:>9,.0f} "
            f"{f'{load.p50_ms:.1f}/{load.p90_ms:.1f}/{load.p99_ms:.1f}':>21} "
            f"{load.errors:>4} {fmt(row.landed_per_s, ',.0f'):>9}"
        )
    print("webhook -> patch landed (watch on the API server; p50/p90/p99):")
    for row in rows:
        if row.probe_ms or row.idle_probe_ms:
            print(
                f"  {row.name:<46} {row.objects:>8,}  idle {latency_summary(row.idle_probe_ms)}"
                f"  under load {latency_summary(row.probe_ms)}  backlog drained "
                f"{fmt(row.drain_s)}s after the load"
            )
    ours = {r.objects: r for r in rows if r.name.startswith("gitops")}
    for size, row in sorted(ours.items()):
        print(
            f"gitops-receiver at {size:,}: ready {row.ready_s:.1f}s after start, "
            f"RSS {row.rss_mib:.0f} MiB, backlog drained {fmt(row.drain_s)}s after the load"
        )
    if len(ours) >= 2:
        low, high = min(ours), max(ours)
        per = (ours[high].rss_mib - ours[low].rss_mib) * 1024 * 1024 / (high - low)
        print(f"RSS delta per object between {low:,} and {high:,} objects: {per:.0f} B")
    for note in notes:
        print("note: " + note)
    print()
    print("TARGETS")
    ref_a = next((r for r in rows if r.name.startswith("(a)")), None)
    flux_rows = [r for r in rows if r.name.startswith("(b)") and r.load]
    ref_b = max(flux_rows, key=lambda r: r.load.rps if r.load else 0.0, default=None)
    our_ref = ours.get(reference)

    def verdict(ok: bool) -> str:
        return "MET" if ok else "NOT MET"

    lines: list[tuple[str, str, str]] = []
    if our_ref and our_ref.load and ref_a and ref_a.load:
        share = our_ref.load.rps / ref_a.load.rps
        per_cpu = (our_ref.load.rps / our_ref.server_cores) / (ref_a.load.rps / ref_a.server_cores)
        lines.append(
            (
                f"throughput at {reference:,} objects >= 50% of (a), one core",
                f"{our_ref.load.rps:,.0f} vs {ref_a.load.rps:,.0f} req/s = {share:.0%} "
                f"(per server CPU-second: {per_cpu:.0%})",
                verdict(share >= TARGET_SHARE_OF_CEILING),
            )
        )
    else:
        lines.append((f"throughput at {reference:,} objects >= 50% of (a)", "not measured", "n/a"))
    if our_ref and our_ref.load and ref_b and ref_b.load:
        lines.append(
            (
                f"throughput at {reference:,} objects above (b): answers",
                f"{our_ref.load.rps:,.0f} vs {ref_b.load.rps:,.0f} req/s (best (b) row)",
                verdict(our_ref.load.rps > ref_b.load.rps),
            )
        )
        lines.append(
            (
                f"throughput at {reference:,} objects above (b): patches landed",
                f"{fmt(our_ref.landed_per_s, ',.0f')} vs {fmt(ref_b.landed_per_s, ',.0f')}/s "
                f"(gitops-receiver with {workers} reconcile workers)",
                verdict(our_ref.landed_per_s > ref_b.landed_per_s),
            )
        )
    else:
        lines.append((f"throughput at {reference:,} objects above (b)", "not measured", "n/a"))
    width = max(len(name) for name, _, _ in lines)
    for name, value, ok in lines:
        print(f"  {name:<{width}}  {ok:<8} {value}")


async def driver(args: argparse.Namespace) -> None:
    plan = LoadPlan(
        concurrency=args.concurrency,
        warmup_s=args.warmup_s,
        duration_s=args.duration_s,
        probe_interval_s=args.probe_interval_s,
    )
    sizes = args.objects
    reference = 10_000 if 10_000 in sizes else sizes[len(sizes) // 2]
    rows: list[Row] = []
    notes: list[str] = []
    async with beds.open_bed(args) as bed:
        print(
            f"load generator: {bed.tool} (separate process, {plan.concurrency} connections, "
            f"{plan.duration_s:.0f}s per row after {plan.warmup_s:.0f}s warm-up); pinning: "
            f"{'servers on CPU 0, everything else on CPU 1' if can_pin() else 'none'}",
            flush=True,
        )
        for objects in sizes:
            await bed.cluster.seed(objects, repos=args.repos, concurrency=args.seed_concurrency)
            rows.append(await run_ours(bed, args, plan, objects))
            if objects == reference:
                if not args.skip_minimal:
                    rows.append(await run_minimal(bed, args, plan, objects))
                if not args.skip_flux:
                    rows.extend(await run_flux(bed, args, plan, objects, notes))
        for size, elapsed in sorted(bed.cluster.seed_times.items()):
            notes.append(f"seeding up to {size:,} objects took {elapsed:.1f}s")
    report(rows, reference=reference, workers=args.workers, notes=notes)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    beds.add_common_arguments(parser, objects=[100, 10_000])
    parser.add_argument("--duration-s", type=float, default=10.0, help="load per row (default 10)")
    parser.add_argument("--warmup-s", type=float, default=3.0, help="warm-up per row (default 3)")
    parser.add_argument("--concurrency", type=int, default=32, help="connections (default 32)")
    parser.add_argument(
        "--sample-repos",
        type=int,
        default=1000,
        help="repositories the load pushes to, drawn among those with objects; (b) gets one "
        "Receiver per sampled repository (default 1000)",
    )
    parser.add_argument("--probe-interval-s", type=float, default=0.1)
    parser.add_argument("--skip-flux", action="store_true")
    parser.add_argument("--skip-minimal", action="store_true")
    return parser.parse_args(argv)


if __name__ == "__main__":
    beds.run(driver, parse_args(sys.argv[1:]))
