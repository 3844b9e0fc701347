"""Benchmark: one full poller tick over N remotes served by one `git daemon` on loopback.

Creates N bare repositories (one made with GitPython, copied N times), serves them with
`git daemon` on 127.0.0.1, and runs one `Poller.tick()` at the given concurrency with the
chosen ls-remote backend. 1% of the objects have a stale artifact, so the tick also requests
reconciles. Prints the tick's wall time and peak RSS (this process, and the largest git child).
Bounded: every git call has a timeout and the whole tick a deadline.

    .venv/bin/python -m benchmarks.poller_tick --remotes 1000 --concurrency 16 --backend gitpython
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import shutil
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

from prometheus_client import CollectorRegistry

from receiver.config import PollSettings
from receiver.events import ObjectRef
from receiver.objects.resources import GIT_REPOSITORY
from receiver.poller import refs, runner
from receiver.routing.refs import RefSpec
from tests.support import gitserver
from tests.support.ls_remote import SubprocessLsRemote

TICK_DEADLINE_S = 600.0


def _rss_mib(who: int) -> float:
    return resource.getrusage(who).ru_maxrss / 1024  # Linux reports KiB


async def _bench(root: Path, *, remotes: int, concurrency: int, backend: str) -> int:
    template = gitserver.BareRepo(root, "template")
    sha = template.sha("refs/heads/master")
    for index in range(remotes):
        shutil.copytree(template.path, root / f"repo-{index:04d}.git")
    daemon = gitserver.GitDaemon(root, max_connections=concurrency * 4)
    records = [
        refs.PollRecord(
            ref=ObjectRef(GIT_REPOSITORY.api_version, GIT_REPOSITORY.kind, "bench", f"r{index}"),
            url=daemon.url(f"repo-{index:04d}"),
            spec_ref=RefSpec(branch="master"),
            artifact_revision=f"master@sha1:{'0' * 40 if index % 100 == 0 else sha}",
        )
        for index in range(remotes)
    ]
    requested: list[ObjectRef] = []

    async def read_secret(namespace: str, name: str) -> Mapping[str, bytes] | None:
        return None

    def request(ref: ObjectRef, *, reason: str) -> None:
        requested.append(ref)

    ls_remote: runner.LsRemote
    if backend == "gitpython":
        threaded = runner.GitPythonLsRemote(max_threads=concurrency)
        ls_remote = threaded
    else:
        threaded = None
        ls_remote = SubprocessLsRemote()
    poller = runner.Poller(
        settings=PollSettings(
            enabled=True, concurrency=concurrency, per_host_limit=concurrency, timeout_s=30.0
        ),
        list_records=lambda: records,
        read_secret=read_secret,
        request_reconcile=request,
        recently_requested=lambda ref, within_s: False,
        ls_remote=ls_remote,
        metrics=runner.PollerMetrics(CollectorRegistry()),
        random=lambda: 0.5,
    )
    rss_before = _rss_mib(resource.RUSAGE_SELF)
    try:
        started = time.perf_counter()
        report = await asyncio.wait_for(poller.tick(), TICK_DEADLINE_S)
        wall_s = time.perf_counter() - started
    finally:
        if threaded is not None:
            threaded.close()
        daemon.close()
    print(f"backend={backend} remotes={remotes} concurrency={concurrency}")
    print(f"outcomes={dict(report.outcomes)} reconciles_requested={len(report.requested)}")
    print(f"tick_wall_s={wall_s:.2f} per_remote_ms={1000 * wall_s / max(remotes, 1):.1f}")
    print(
        f"peak_rss_self_mib={_rss_mib(resource.RUSAGE_SELF):.1f} "
        f"(before tick {rss_before:.1f}) "
        f"peak_rss_largest_child_mib={_rss_mib(resource.RUSAGE_CHILDREN):.1f}"
    )
    return 0 if report.outcomes.get("ok", 0) == remotes else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--remotes", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--backend", choices=("gitpython", "subprocess"), default="gitpython")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="poller-bench-") as tmp:
        return asyncio.run(
            _bench(
                Path(tmp), remotes=args.remotes, concurrency=args.concurrency, backend=args.backend
            )
        )


if __name__ == "__main__":
    sys.exit(main())
