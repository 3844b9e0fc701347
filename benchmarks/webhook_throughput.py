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
from benchmarks.harness import pushrate, servers
from benchmarks.harness.load import percentile
from benchmarks.harness.measure import LoadPlan, Row, fmt, measure
from benchmarks.harness.payloads import PROBES, entries_for, object_name, sample_repos
from benchmarks.harness.processes import Children, can_pin, rss_mib

TARGET_SHARE_OF_CEILING = 0.5
TARGET_LARGEST_VS_REFERENCE = 0.9  # discovery at 100,000 objects within 10% of 10,000
TARGET_RSS_MIB = 200
DISCOVERY_ROW = "gitops-receiver discovery /webhooks/github"
RECEIVER_ROW = "gitops-receiver Receiver /hook/<digest>"
CEILING_ROW = "(a) ceiling: minimal aiohttp HMAC+JSON"
FLUX_RATE = "(b) notification-controller, client limits raised"


async def run_ours(
    bed: beds.Bed,
    args: argparse.Namespace,
    plan: LoadPlan,
    objects: int,
    rates: dict[str, float],
) -> list[Row]:
    """One gitops-receiver process per size, measured on the discovery path and then on the
    Receiver path (one Receiver per pushed repository, as Flux's row uses); at the reference
    size, each path's sustainable push rate too."""
    repos = sample_repos(objects, repos=args.repos, sample=args.sample_repos)
    await servers.create_receivers(bed, objects=objects, repos=repos, repo_count=args.repos)
    started = time.monotonic()
    proc, ports = await servers.start_ours(
        bed,
        tag=str(objects),
        workers=args.workers,
        log_level=args.log_level,
        min_interval_s=args.min_interval_s,
        profile_dir=args.profile,
    )
    try:
        ready_s = time.monotonic() - started
        await asyncio.sleep(1.0)
        print(
            f"  gitops-receiver ready after {ready_s:.1f}s with {objects:,} objects, "
            f"RSS {rss_mib(proc.pid):.0f} MiB, CPUs {sorted(os.sched_getaffinity(proc.pid))}",
            flush=True,
        )
        repo_paths, probe_paths = servers.hook_paths(objects=objects, repos=repos)
        rows = []
        for name, paths, probes in (
            (
                DISCOVERY_ROW,
                dict.fromkeys(repos, "/webhooks/github"),
                ["/webhooks/github"] * PROBES,
            ),
            (RECEIVER_ROW, repo_paths, probe_paths),
        ):
            row = Row(name, objects, ready_s=ready_s)
            await measure(
                bed,
                plan=plan,
                row=row,
                base_url=f"http://127.0.0.1:{ports['webhook']}",
                entries=entries_for(repos, paths),
                probe_paths=probes,
                server_pid=proc.pid,
            )
            row.rss_mib = rss_mib(proc.pid, field="VmHWM")
            rows.append(row)
            if objects == reference(args.objects) and not args.skip_push_rate:
                rates[name], _ = await pushrate.sustainable_rate(
                    bed,
                    label=name,
                    base_url=f"http://127.0.0.1:{ports['webhook']}",
                    entries=entries_for(repos, paths),
                    members=members(repos, objects=objects, repo_count=args.repos),
                    duration_s=args.push_rate_s,
                )
        return rows
    finally:
        Children.stop(proc)


def reference(sizes: list[int]) -> int:
    """The size the targets compare at: 10,000 objects when measured."""
    return 10_000 if 10_000 in sizes else sizes[len(sizes) // 2]


def members(repos: list[int], *, objects: int, repo_count: int) -> list[list[tuple[str, str]]]:
    """Per pushed repository (in `repos` order), the GitRepositories that point at it."""
    return [[object_name(i) for i in range(repo, objects, repo_count)] for repo in repos]


async def run_minimal(bed: beds.Bed, args: argparse.Namespace, plan: LoadPlan, objects: int) -> Row:
    proc, port = await servers.start_minimal(bed)
    try:
        repos = sample_repos(objects, repos=args.repos, sample=args.sample_repos)
        row = Row(CEILING_ROW, objects)
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
    bed: beds.Bed,
    args: argparse.Namespace,
    plan: LoadPlan,
    objects: int,
    notes: list[str],
    rates: dict[str, float],
) -> list[Row]:
    found = servers.flux_binary()
    if isinstance(found, str):
        notes.append(f"(b) not measured: {found}")
        print(f"  (b) skipped: {found}", flush=True)
        return []
    binary, crd_dir = found
    repos = sample_repos(objects, repos=args.repos, sample=args.sample_repos)
    await servers.install_flux_crds(bed, crd_dir=crd_dir)
    names = [servers.receiver_name(objects, repo) for repo in repos]
    probe_names = [f"probe-{k:02d}" for k in range(PROBES)]
    rows = []
    for label, extra in (
        ("default client limits", []),
        ("--kube-api-qps/burst 10000", ["--kube-api-qps=10000", "--kube-api-burst=10000"]),
    ):
        proc = None
        try:
            proc, port, paths = await servers.start_flux(
                bed, binary=binary, extra=extra, receivers=names + probe_names
            )
            row = Row(f"(b) notification-controller, {label}", objects)
            await measure(
                bed,
                plan=plan,
                row=row,
                base_url=f"http://127.0.0.1:{port}",
                entries=entries_for(
                    repos, {repo: paths[name] for repo, name in zip(repos, names, strict=True)}
                ),
                probe_paths=[paths[name] for name in probe_names],
                server_pid=proc.pid,
            )
            rows.append(row)
            if extra and not args.skip_push_rate:  # Flux at its best: client limits raised
                rates[FLUX_RATE], _ = await pushrate.sustainable_rate(
                    bed,
                    label=FLUX_RATE,
                    base_url=f"http://127.0.0.1:{port}",
                    entries=entries_for(
                        repos, {repo: paths[name] for repo, name in zip(repos, names, strict=True)}
                    ),
                    members=members(repos, objects=objects, repo_count=args.repos),
                    duration_s=args.push_rate_s,
                )
        except RuntimeError as exc:
            notes.append(f"(b) {label} failed: {exc}")
            print(f"  (b) {label} failed: {exc}", flush=True)
        finally:
            if proc is not None:
                Children.stop(proc)
    return rows


def report(rows: list[Row], *, reference: int, notes: list[str], rates: dict[str, float]) -> None:
    print()
    print("=" * 132)
    print(
        f"{'row':<46} {'objects':>8} {'req/s':>7} {'answer p50/p99 ms':>17} {'CPU µs/deliv':>12} "
        f"{'patches/s':>9} {'webhook->patch p50/p99 ms':>25} {'idle p50':>8}"
    )
    for row in rows:
        load = row.load
        assert load is not None
        probes = sorted(row.probe_ms)
        idle = sorted(row.idle_probe_ms)
        w2p = (
            f"{percentile(probes, 50) * 1000:.0f}/{percentile(probes, 99) * 1000:.0f}"
            if probes
            else "n/a"
        )
        print(
            f"{row.name:<46} {row.objects:>8,} {load.rps:>7,.0f} "
            f"{f'{load.p50_ms:.1f}/{load.p99_ms:.1f}':>17} {row.cpu_us_per_delivery:>12,.0f} "
            f"{fmt(row.landed_per_s, ',.0f'):>9} {w2p:>25} "
            f"{fmt(percentile(idle, 50) * 1000 if idle else float('nan')):>8}"
        )
    print(
        "(answer latency from the load generator; webhook->patch from probe pushes during the "
        "load to one-object repositories, timed by a watch on the API server)"
    )
    for row in rows:
        if row.load is not None and row.load.errors:
            notes.append(f"{row.name} at {row.objects:,}: {row.load.errors} errors")
        if row.server_waiting > 0.05:
            notes.append(
                f"{row.name} at {row.objects:,}: the server waited for a CPU "
                f"{row.server_waiting:.0%} of the time (machine shared)"
            )
    if rates:
        print(
            f"highest steady push rate at {reference:,} objects with webhook -> patch p99 under "
            "1 s (pushes over the sampled repositories, offered at a fixed rate):"
        )
        for name, rate in rates.items():
            print(f"  {name:<46} {rate:>8,.0f} pushes/s")
    for note in notes:
        print("note: " + note)
    print()
    print("TARGETS")

    def find(name: str, objects: int) -> Row | None:
        return next((r for r in rows if r.name == name and r.objects == objects), None)

    ceiling = next((r for r in rows if r.name == CEILING_ROW), None)
    lines: list[tuple[str, str, str]] = []
    for name in (RECEIVER_ROW, DISCOVERY_ROW):
        ours = find(name, reference)
        what = f"{name.split()[1]} path at {reference:,} objects >= 50% of the ceiling"
        if ours and ours.load and ceiling and ceiling.load:
            share = ours.load.rps / ceiling.load.rps
            lines.append(
                (
                    what,
                    f"{ours.load.rps:,.0f} vs {ceiling.load.rps:,.0f} req/s = {share:.2f} "
                    f"(CPU per delivery {ours.cpu_us_per_delivery:,.0f} vs "
                    f"{ceiling.cpu_us_per_delivery:,.0f} µs)",
                    verdict(share >= TARGET_SHARE_OF_CEILING),
                )
            )
        else:
            lines.append((what, "not measured", "n/a"))
    largest = max((r.objects for r in rows if r.name == DISCOVERY_ROW), default=0)
    low, high = find(DISCOVERY_ROW, reference), find(DISCOVERY_ROW, largest)
    what = f"discovery at {largest:,} objects within 10% of {reference:,}"
    if low and high and low.load and high.load and largest > reference:
        ratio = high.load.rps / low.load.rps
        lines.append(
            (
                what,
                f"{high.load.rps:,.0f} vs {low.load.rps:,.0f} req/s = {ratio:.2f}",
                verdict(ratio >= TARGET_LARGEST_VS_REFERENCE),
            )
        )
    else:
        lines.append((what, "not measured", "n/a"))
    peak = max(
        (r.rss_mib for r in rows if r.objects == largest and r.name.startswith("gitops")),
        default=float("nan"),
    )
    lines.append(
        (
            f"peak RSS at {largest:,} GitRepositories < {TARGET_RSS_MIB} MB",
            f"{peak * 1.048576:.0f} MB ({peak:.0f} MiB, VmHWM after both rows)",
            verdict(peak * 1.048576 < TARGET_RSS_MIB) if peak == peak else "n/a",
        )
    )
    flux_rate = rates.get(FLUX_RATE)
    for name in (RECEIVER_ROW, DISCOVERY_ROW):
        ours_rate = rates.get(name)
        what = f"{name.split()[1]} path: sustainable push rate >= 2x Flux's"
        if ours_rate is not None and flux_rate:
            lines.append(
                (
                    what,
                    f"{ours_rate:,.0f} vs {flux_rate:,.0f} pushes/s = {ours_rate / flux_rate:.1f}x",
                    verdict(ours_rate >= 2 * flux_rate),
                )
            )
        else:
            lines.append((what, "not measured", "n/a"))
    width = max(len(name) for name, _, _ in lines)
    for name, value, ok in lines:
        print(f"  {name:<{width}}  {ok:<8} {value}")


def verdict(ok: bool) -> str:
    return "MET" if ok else "NOT MET"


async def driver(args: argparse.Namespace) -> None:
    plan = LoadPlan(
        concurrency=args.concurrency,
        warmup_s=args.warmup_s,
        duration_s=args.duration_s,
        probe_interval_s=args.probe_interval_s,
        py_spy_dir=args.py_spy,
    )
    sizes = args.objects
    at = reference(sizes)
    rates: dict[str, float] = {}
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
            rows.extend(await run_ours(bed, args, plan, objects, rates))
            if objects == at:
                if not args.skip_minimal:
                    rows.append(await run_minimal(bed, args, plan, objects))
                if not args.skip_flux:
                    rows.extend(await run_flux(bed, args, plan, objects, notes, rates))
        for size, elapsed in sorted(bed.cluster.seed_times.items()):
            notes.append(f"seeding up to {size:,} objects took {elapsed:.1f}s")
    report(rows, reference=at, notes=notes, rates=rates)


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
    parser.add_argument(
        "--py-spy",
        type=Path,
        metavar="DIR",
        help="sample each server under load with py-spy (pip install py-spy) into DIR",
    )
    parser.add_argument(
        "--push-rate-s",
        type=float,
        default=10.0,
        help="seconds per step of the sustainable push rate search (default 10)",
    )
    parser.add_argument("--skip-push-rate", action="store_true")
    parser.add_argument("--skip-flux", action="store_true")
    parser.add_argument("--skip-minimal", action="store_true")
    return parser.parse_args(argv)


if __name__ == "__main__":
    beds.run(driver, parse_args(sys.argv[1:]))
