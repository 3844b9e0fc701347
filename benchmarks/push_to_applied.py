"""Benchmark: from `git push` to the change in the cluster, on Flux's real controllers.

One run, one machine, the same bed for every row: kube-apiserver + etcd (tests/envtest.py),
source-controller and kustomize-controller v1.9.6 (tests/support/flux.py, built once by
scripts/build-flux.sh), a Git repository of one ConfigMap served over smart HTTP. For each row,
N successive commits: each one changes the ConfigMap's `version`, is pushed with `git push`,
announced (or not), and timed from the start of the push to the moment a watch on the API
server delivers the ConfigMap with the new value. The next commit waits until the Kustomization
is Ready at the previous one. Rows:

  receiver     gitops-receiver, a signed GitHub push to a Flux Receiver's /hook/<digest>
  discovery    gitops-receiver, the same push to /webhooks/github (routed by URL and branch)
  flux         Flux's notification-controller v1.9.0, the same push to its Receiver
  interval     no webhook: the GitRepository's own `interval` (1m), poller off

gitops-receiver runs in this process with its defaults (no push-time downstream patch;
`--downstream` adds a row with `discovery.downstream: true` to measure that option).
Prints p50/p95/max per row, in seconds. Every wait is bounded.

    .venv/bin/python -m benchmarks.push_to_applied --commits 20
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import ssl
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from receiver import samples
from receiver.routing.hooks import webhook_path
from tests import envtest
from tests.support import flux
from tests.support.running import running_app

TOKEN = "push-to-applied-token"
CONFIGMAP = "app-config"
APPLY_TIMEOUT_S = 150.0  # above the 1m interval row's worst case
ROWS = ("receiver", "discovery", "flux", "interval")


@dataclass
class Row:
    name: str
    namespace: str
    repo: flux.FleetRepo
    seconds: list[float] = field(default_factory=list)


class Bed:
    """The cluster, Flux's controllers and the Git server, started once for all rows."""

    def __init__(self, work: Path) -> None:
        self.work = work
        self.server: envtest.KubeTestServer | None = None
        self.controllers: flux.FluxControllers | None = None
        self.git: flux.ThreadedGitServer | None = None
        self.session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        binaries = envtest.locate_binaries()
        if isinstance(binaries, str):
            raise RuntimeError(binaries)
        build = flux.locate_build(notify=print)
        if isinstance(build, str):
            raise RuntimeError(build)
        self.build = build
        self.server = envtest.KubeTestServer(binaries=binaries)
        await asyncio.to_thread(self.server.start)
        await asyncio.to_thread(self.server.install_crds, flux.crd_dirs(build))
        self.controllers = flux.FluxControllers(build=build, kubeconfig=self.server.kubeconfig_path)
        await asyncio.to_thread(self.controllers.start)
        (self.work / "served").mkdir()
        self.git = flux.ThreadedGitServer(self.work / "served")
        ssl_context = ssl.create_default_context(cafile=str(self.server.ca_path))
        self.session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=ssl_context))

    async def stop(self) -> None:
        if self.session is not None:
            await self.session.close()
        if self.git is not None:
            self.git.close()
        if self.controllers is not None:
            self.controllers.stop()
        if self.server is not None:
            self.server.stop()

    async def api(self, method: str, path: str, body: object | None = None) -> Any:
        assert self.server is not None
        status, answer = await asyncio.to_thread(self.server.request, method, path, body=body)
        if status >= 300:
            raise RuntimeError(f"{method} {path}: HTTP {status}: {answer}")
        return answer

    async def row(self, name: str) -> Row:
        """A namespace with a Secret, a repository, its GitRepository and Kustomization, the
        first commit applied."""
        assert self.git is not None
        namespace = f"bench-{name}"
        await self.api("POST", "/api/v1/namespaces", {"metadata": {"name": namespace}})
        await self.api(
            "POST",
            f"/api/v1/namespaces/{namespace}/secrets",
            {"metadata": {"name": "webhook-token"}, "stringData": {"token": TOKEN}},
        )
        repo = flux.FleetRepo(server=self.git, name=f"acme/{name}")
        row = Row(name=name, namespace=namespace, repo=repo)
        repo.commit({"app.yaml": flux.configmap(CONFIGMAP, {"version": "0"})}, message="0")
        _, first = await repo.apush()
        source = flux.git_repository(name="fleet", url=repo.url, interval="1m")
        await self.api(
            "POST", f"/apis/{flux.SOURCE_API}/namespaces/{namespace}/gitrepositories", source
        )
        ks = flux.kustomization(
            name="apps", source="fleet", target_namespace=namespace, interval="10m"
        )
        await self.api(
            "POST", f"/apis/{flux.KUSTOMIZE_API}/namespaces/{namespace}/kustomizations", ks
        )
        await self.wait_ready(row, first)
        return row

    async def wait_ready(self, row: Row, sha: str) -> None:
        deadline = time.monotonic() + APPLY_TIMEOUT_S
        path = f"/apis/{flux.KUSTOMIZE_API}/namespaces/{row.namespace}/kustomizations/apps"
        while flux.applied_revision(await self.api("GET", path)) != f"main@sha1:{sha}":
            if time.monotonic() > deadline:
                raise RuntimeError(f"{row.name}: Kustomization not Ready at {sha}")
            await asyncio.sleep(0.1)

    @contextlib.asynccontextmanager
    async def configmap_watch(self, row: Row) -> AsyncIterator[asyncio.Queue[tuple[float, str]]]:
        """(monotonic time of arrival, data.version) for every change the watch delivers."""
        assert self.server is not None and self.session is not None
        found: asyncio.Queue[tuple[float, str]] = asyncio.Queue()
        url = (
            f"{self.server.url}/api/v1/namespaces/{row.namespace}/configmaps"
            f"?watch=1&fieldSelector=metadata.name%3D{CONFIGMAP}"
        )
        headers = {"Authorization": f"Bearer {self.server.token}"}

        async def stream() -> None:
            assert self.session is not None
            async with self.session.get(url, headers=headers, timeout=None) as answer:
                async for line in answer.content:
                    event = json.loads(line)
                    version = (event.get("object", {}).get("data") or {}).get("version")
                    if version is not None:
                        found.put_nowait((time.monotonic(), version))

        task = asyncio.create_task(stream())
        try:
            yield found
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, aiohttp.ClientError):
                await task

    async def measure(
        self, row: Row, *, commits: int, announce: Callable[[str, str], Awaitable[None]] | None
    ) -> None:
        async with self.configmap_watch(row) as changes:
            for i in range(1, commits + 1):
                version = str(i)
                row.repo.commit(
                    {"app.yaml": flux.configmap(CONFIGMAP, {"version": version})}, message=version
                )
                started = time.monotonic()
                before, after = await row.repo.apush()
                if announce is not None:
                    await announce(before, after)
                deadline = started + APPLY_TIMEOUT_S
                while True:
                    arrived, seen = await asyncio.wait_for(
                        changes.get(), max(deadline - time.monotonic(), 0.01)
                    )
                    if seen == version:
                        break
                row.seconds.append(arrived - started)
                await self.wait_ready(row, after)
                print(f"  {row.name} #{i}: {row.seconds[-1]:.3f} s", flush=True)

    async def post_push(self, url: str, row: Row, before: str, after: str) -> None:
        """A signed GitHub push naming the repository by the URL Flux clones."""
        assert self.session is not None
        body = samples.encode(
            flux.push_payload(
                kind="github", url=row.repo.url, project=row.repo.name, before=before, after=after
            )
        )
        headers = samples.signed_delivery(
            kind="github", secret=TOKEN, body=body, event="push", delivery_id=str(uuid.uuid4())
        )
        async with self.session.post(url, data=body, headers=headers) as answer:
            if answer.status != 200:
                raise RuntimeError(f"{url}: HTTP {answer.status}: {await answer.text()}")

    async def receiver(self, row: Row, *, labelled: bool) -> str:
        """A github Receiver for the row's GitRepository; returns its webhook path."""
        metadata: dict[str, Any] = {"name": "github"}
        if labelled:
            metadata["labels"] = flux.labels()
        await self.api(
            "POST",
            f"/apis/notification.toolkit.fluxcd.io/v1/namespaces/{row.namespace}/receivers",
            {
                "apiVersion": "notification.toolkit.fluxcd.io/v1",
                "kind": "Receiver",
                "metadata": metadata,
                "spec": {
                    "type": "github",
                    "events": ["push"],
                    "secretRef": {"name": "webhook-token"},
                    "resources": [
                        {"apiVersion": flux.SOURCE_API, "kind": "GitRepository", "name": "fleet"}
                    ],
                },
            },
        )
        return webhook_path(token=TOKEN.encode(), name="github", namespace=row.namespace)


async def run_ours(bed: Bed, rows: list[str], *, commits: int, downstream: bool) -> list[Row]:
    assert bed.server is not None
    made = {name: await bed.row(name) for name in rows}
    done: list[Row] = []
    for name, row in made.items():
        discovery = name.startswith("discovery")
        secret = {"secret_ref": {"namespace": row.namespace, "name": "webhook-token"}}
        settings: dict[str, Any] = {
            "discovery": {
                "endpoints": {"github": secret} if discovery else {},
                "namespaces": [row.namespace],
                "downstream": downstream,
            },
            "log_level": "warning",
        }
        path = await bed.receiver(row, labelled=False) if name == "receiver" else "/webhooks/github"
        async with running_app(kubeconfig=bed.server.kubeconfig_path, **settings) as app:
            url = f"http://127.0.0.1:{app.ports['webhook']}{path}"

            async def announce(before: str, after: str, url: str = url, row: Row = row) -> None:
                await bed.post_push(url, row, before, after)

            await bed.measure(row, commits=commits, announce=announce)
        done.append(row)
    return done


async def run_flux(bed: Bed, *, commits: int) -> Row:
    assert bed.controllers is not None
    row = await bed.row("flux")
    port = await asyncio.to_thread(bed.controllers.start_notification_controller)
    path = await bed.receiver(row, labelled=True)
    deadline = time.monotonic() + APPLY_TIMEOUT_S
    receiver = (
        f"/apis/notification.toolkit.fluxcd.io/v1/namespaces/{row.namespace}/receivers/github"
    )
    while (await bed.api("GET", receiver)).get("status", {}).get("webhookPath") != path:
        if time.monotonic() > deadline:
            raise RuntimeError("notification-controller did not make the Receiver Ready")
        await asyncio.sleep(0.1)
    url = f"http://127.0.0.1:{port}{path}"

    async def announce(before: str, after: str) -> None:
        await bed.post_push(url, row, before, after)

    await bed.measure(row, commits=commits, announce=announce)
    return row


def report(rows: list[Row]) -> None:
    print()
    print(f"{'row':<22} {'n':>3} {'p50 s':>8} {'p95 s':>8} {'max s':>8}")
    for row in rows:
        values = sorted(row.seconds)
        p95 = statistics.quantiles(values, n=100, method="inclusive")[94]
        print(
            f"{row.name:<22} {len(values):>3} {statistics.median(values):>8.3f} "
            f"{p95:>8.3f} {max(values):>8.3f}"
        )


async def main(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory(prefix="push-to-applied-") as work:
        bed = Bed(Path(work))
        try:
            await bed.start()
            rows = [name for name in ROWS if name in args.rows]
            ours = [name for name in rows if name in ("receiver", "discovery")]
            done = await run_ours(bed, ours, commits=args.commits, downstream=False)
            if args.downstream:
                done += await run_ours(
                    bed, ["discovery-downstream"], commits=args.commits, downstream=True
                )
            if "flux" in rows:
                done.append(await run_flux(bed, commits=args.commits))
            if "interval" in rows:
                row = await bed.row("interval")
                await bed.measure(row, commits=args.commits, announce=None)
                done.append(row)
        finally:
            await bed.stop()
    report(done)
    return 0


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commits", type=int, default=20, help="commits per row (default 20)")
    parser.add_argument(
        "--rows",
        default=",".join(ROWS),
        type=lambda text: text.split(","),
        help=f"comma-separated rows (default {','.join(ROWS)})",
    )
    parser.add_argument(
        "--downstream",
        action="store_true",
        help="add a row: discovery with discovery.downstream: true",
    )
    return parser.parse_args(argv)


if __name__ == "__main__":
    sys.exit(asyncio.run(main(parse_args(sys.argv[1:]))))
