"""The benchmark's cluster: a real kube-apiserver + etcd (tests/envtest.py) seeded with
GitRepositories, a driver-side JSON client, and a watch that records when each reconcile
annotation lands (webhook -> patch is timed by that watch, the way Flux would notice it).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import ssl
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from benchmarks.harness.payloads import (
    FLUX_NS,
    GROUP_PATH,
    NAMESPACES,
    PROBE_NS,
    PROBES,
    REQUESTED_AT,
    SYSTEM_NS,
    TOKEN,
    git_repository,
    probe_repository,
)
from benchmarks.harness.processes import pin
from tests import envtest
from tests.support import flux


class Api:
    """JSON calls to the test API server over one aiohttp session (driver side only)."""

    def __init__(self, server: envtest.KubeTestServer) -> None:
        self.url = server.url
        context = ssl.create_default_context(cafile=str(server.ca_path))
        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=context, limit=128),
            headers={"Authorization": f"Bearer {server.token}"},
            timeout=aiohttp.ClientTimeout(total=60),
        )

    async def close(self) -> None:
        await self.session.close()

    async def call(
        self, method: str, path: str, body: Any = None, *, content_type: str = "application/json"
    ) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": content_type} if data is not None else {}
        async with self.session.request(
            method, self.url + path, data=data, headers=headers
        ) as response:
            text = await response.text()
            try:
                return response.status, json.loads(text)
            except ValueError:
                return response.status, text

    async def ensure(self, method: str, path: str, body: Any = None, **kwargs: Any) -> Any:
        status, answer = await self.call(method, path, body, **kwargs)
        if status >= 300 and status != 409:
            raise RuntimeError(f"{method} {path}: HTTP {status}: {str(answer)[:300]}")
        return answer


async def create_all(api: Api, documents: list[dict[str, Any]], *, concurrency: int) -> None:
    """POST every document (409 counts as done), at most `concurrency` in flight."""
    queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    for document in documents:
        queue.put_nowait(document)

    async def worker() -> None:
        while not queue.empty():
            document = queue.get_nowait()
            meta = document["metadata"]
            path = f"{GROUP_PATH}/namespaces/{meta['namespace']}/gitrepositories"
            if document["kind"] == "Receiver":
                path = (
                    f"/apis/notification.toolkit.fluxcd.io/v1/namespaces/{meta['namespace']}"
                    "/receivers"
                )
            for attempt in range(5):
                status, answer = await api.call("POST", path, document)
                if status in (201, 409):
                    break
                if status == 429 or status >= 500:
                    await asyncio.sleep(0.2 * (attempt + 1))
                    continue
                raise RuntimeError(f"create {meta['name']}: HTTP {status}: {str(answer)[:300]}")
            else:
                raise RuntimeError(f"create {meta['name']}: still failing after 5 attempts")

    await asyncio.gather(*(worker() for _ in range(concurrency)))


class Cluster:
    """kube-apiserver + etcd with the benchmark's namespaces, webhook Secrets and probe objects;
    `seed` grows the GitRepositories to a total (sizes are run in increasing order)."""

    def __init__(self) -> None:
        self.server: envtest.KubeTestServer | None = None
        self.api: Api | None = None
        self.seeded = 0
        self.seed_times: dict[int, float] = {}

    async def start(self) -> None:
        binaries = envtest.locate_binaries()
        if isinstance(binaries, str):
            raise RuntimeError(binaries)
        self.server = envtest.KubeTestServer(binaries=binaries)
        await asyncio.to_thread(self.server.start)
        build = flux.locate_build(notify=print)
        if isinstance(build, str):
            raise RuntimeError(build)
        await asyncio.to_thread(self.server.install_crds, flux.crd_dirs(build))
        self.api = Api(self.server)
        for ns in (*NAMESPACES, PROBE_NS, FLUX_NS, SYSTEM_NS):
            await self.api.ensure("POST", "/api/v1/namespaces", {"metadata": {"name": ns}})
        secret = {
            "metadata": {"name": "webhook-token"},
            "stringData": {"token": TOKEN},
        }
        for ns in (SYSTEM_NS, FLUX_NS):
            await self.api.ensure("POST", f"/api/v1/namespaces/{ns}/secrets", secret)
        await create_all(self.api, [probe_repository(k) for k in range(PROBES)], concurrency=PROBES)

    async def stop(self) -> None:
        if self.api is not None:
            await self.api.close()
        if self.server is not None:
            await asyncio.to_thread(self.server.stop)

    def pids(self) -> list[int]:
        assert self.server is not None
        procs = [self.server._apiserver, self.server._etcd]
        return [p.pid for p in procs if p is not None]

    def pin_others(self, cpus: str) -> None:
        """API server, etcd and this driver on `cpus` (CPU 1 while measuring, all otherwise)."""
        for pid in self.pids():
            pin(pid, cpus)
        pin(os.getpid(), cpus)

    @contextlib.contextmanager
    def pinned(self, cpus: str) -> Iterator[None]:
        """API server, etcd and this driver on `cpus` meanwhile, then on every CPU again."""
        self.pin_others(cpus)
        try:
            yield
        finally:
            self.pin_others("0,1")

    async def seed(self, total: int, *, repos: int, concurrency: int) -> None:
        assert self.api is not None
        if total <= self.seeded:
            return
        start = time.monotonic()
        documents = [git_repository(i, repos=repos) for i in range(self.seeded, total)]
        for chunk in range(0, len(documents), 20_000):
            await create_all(self.api, documents[chunk : chunk + 20_000], concurrency=concurrency)
        elapsed = time.monotonic() - start
        self.seed_times[total] = elapsed
        print(
            f"seeded {total - self.seeded:,} GitRepositories (total {total:,}) in {elapsed:.1f}s "
            f"({(total - self.seeded) / elapsed:,.0f}/s, {concurrency} concurrent POSTs)",
            flush=True,
        )
        self.seeded = total


@dataclass
class Landed:
    """Every requestedAt change seen on GitRepositories: (namespace, name) -> arrival times."""

    times: dict[tuple[str, str], list[float]] = field(default_factory=dict)
    values: dict[tuple[str, str], str] = field(default_factory=dict)
    # (wall-clock arrival, requestedAt value) per object, for pushes timed by wall clock
    stamps: dict[tuple[str, str], list[tuple[float, str]]] = field(default_factory=dict)
    total: int = 0
    timeline: list[float] = field(default_factory=list)
    started: float = 0.0  # when the watch was established

    def count_between(self, start: float, end: float) -> int:
        return sum(1 for t in self.timeline if start <= t <= end)


async def watch_landings(api: Api, landed: Landed, ready: asyncio.Event) -> None:
    """Watch GitRepositories cluster-wide from now on; record each requestedAt change."""
    _, listing = await api.call("GET", f"{GROUP_PATH}/gitrepositories?limit=1")
    rv = listing["metadata"]["resourceVersion"]
    url = f"{api.url}{GROUP_PATH}/gitrepositories?watch=1&resourceVersion={rv}&timeoutSeconds=3600"
    timeout = aiohttp.ClientTimeout(total=None, sock_read=None)
    async with api.session.get(url, timeout=timeout) as response:
        if response.status != 200:
            raise RuntimeError(f"watch: HTTP {response.status}")
        landed.started = time.monotonic()
        ready.set()
        async for line in response.content:
            now = time.monotonic()
            if not line.strip():
                continue
            event = json.loads(line)
            obj = event.get("object") or {}
            meta = obj.get("metadata") or {}
            value = (meta.get("annotations") or {}).get(REQUESTED_AT)
            if event.get("type") != "MODIFIED" or not value:
                continue
            key = (meta.get("namespace", ""), meta.get("name", ""))
            if landed.values.get(key) == value:
                continue
            landed.values[key] = value
            landed.times.setdefault(key, []).append(now)
            landed.stamps.setdefault(key, []).append((time.time(), value))
            landed.timeline.append(now)
            landed.total += 1


@contextlib.asynccontextmanager
async def watching(api: Api) -> Any:
    landed = Landed()
    ready = asyncio.Event()
    task = asyncio.create_task(watch_landings(api, landed, ready))
    try:
        await asyncio.wait_for(ready.wait(), timeout=60)
        yield landed
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task


async def quiet(landed: Landed, *, idle_s: float, limit_s: float) -> float:
    """Wait until no landing for `idle_s` (at most `limit_s`); returns the last landing time."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        last = landed.timeline[-1] if landed.timeline else landed.started
        if time.monotonic() - last >= idle_s:
            break
        await asyncio.sleep(0.2)
    return landed.timeline[-1] if landed.timeline else 0.0


async def scrape(url: str) -> dict[str, float]:
    """Prometheus text -> {'name{labels}': value} (only what the burst needs)."""
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session,
        session.get(url) as response,
    ):
        text = await response.text()
    values: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            with contextlib.suppress(ValueError):
                values[key] = float(value)
    return values


def delta(before: dict[str, float], after: dict[str, float], name: str, outcome: str) -> float:
    def total(values: dict[str, float]) -> float:
        return sum(
            v for k, v in values.items() if k.startswith(name) and f'outcome="{outcome}"' in k
        )

    return total(after) - total(before)
