"""A loopback reverse proxy in front of the test API server that can inject faults.

It serves plain HTTP on 127.0.0.1 (random port) and forwards every request, headers and body
included, to the TLS upstream, streaming the answer chunk by chunk (so watches stream through
it). `fail_next()` makes the next matching requests fail with 500/429 (optionally with
Retry-After) without reaching the upstream; `drop_streams()` cuts open streams, as a network
blip would. Every request is recorded for assertions. Test code only; listens on loopback only.
"""

from __future__ import annotations

import asyncio
import json
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from tests import envtest

# Headers that describe one hop, not the message: never forwarded in either direction.
_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
    }
)
_REASONS = {
    429: "TooManyRequests",
    500: "InternalError",
    502: "BadGateway",
    503: "ServiceUnavailable",
}

Matcher = Callable[[str, str], bool]


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """One request as the proxy saw it; `injected_status` is set when a fault answered it."""

    method: str
    path: str
    query: dict[str, str]
    content_type: str | None
    body: bytes
    injected_status: int | None

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass(slots=True)
class _Fault:
    remaining: int
    status: int
    retry_after: int | None
    match: Matcher | None


class FaultProxy:
    """Start with `await start()`, stop with `await stop()`; see the module docstring."""

    def __init__(self, *, upstream_url: str, upstream_ca_path: Path, token: str) -> None:
        self.upstream_url = upstream_url.rstrip("/")
        self._ssl = ssl.create_default_context(cafile=str(upstream_ca_path))
        self._token = token
        self.requests: list[RecordedRequest] = []
        self._faults: list[_Fault] = []
        self._streams: set[aiohttp.ClientResponse] = set()
        self._stream_opened = asyncio.Event()
        self._session: aiohttp.ClientSession | None = None
        self._runner: web.AppRunner | None = None
        self.port = 0
        self.kubeconfig_path: Path | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def write_kubeconfig(self, path: Path) -> Path:
        """Write a kubeconfig pointing at this proxy (plain HTTP, bearer token); sets
        `kubeconfig_path`."""
        self.kubeconfig_path = envtest.write_kubeconfig(path, server=self.url, token=self._token)
        return self.kubeconfig_path

    async def start(self) -> None:
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=self._ssl),
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=10),
            auto_decompress=False,
        )
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self.port = int(sock.getsockname()[1])
        await web.SockSite(self._runner, sock).start()

    async def stop(self) -> None:
        await self.drop_streams()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._session is not None:
            await self._session.close()
            self._session = None

    # fault control
    def fail_next(
        self,
        n: int = 1,
        *,
        status: int = 500,
        retry_after: int | None = None,
        match: Matcher | None = None,
    ) -> None:
        """Answer the next `n` requests for which `match(method, path)` holds with `status`.

        Rules are tried in the order they were added; the answer is a Kubernetes `Status` body,
        with `Retry-After: <retry_after>` when given. The upstream never sees these requests.
        """
        if n < 1:
            raise ValueError("n must be at least 1")
        self._faults.append(
            _Fault(remaining=n, status=status, retry_after=retry_after, match=match)
        )

    @property
    def pending_faults(self) -> int:
        """How many injected failures have not been used yet."""
        return sum(f.remaining for f in self._faults)

    def clear_faults(self) -> None:
        self._faults.clear()

    async def drop_streams(self) -> int:
        """Cut every response still streaming (watches); returns how many were cut."""
        streams = list(self._streams)
        for upstream in streams:
            upstream.close()
        return len(streams)

    async def wait_for_stream(self) -> None:
        """Return once a response is streaming through the proxy (e.g. a watch is connected).

        Callers bound the wait themselves (`asyncio.timeout`).
        """
        while not self._streams:
            self._stream_opened.clear()
            await self._stream_opened.wait()

    def requests_matching(self, method: str, path_suffix: str = "") -> list[RecordedRequest]:
        return [r for r in self.requests if r.method == method and r.path.endswith(path_suffix)]

    def _take_fault(self, method: str, path: str) -> _Fault | None:
        for fault in self._faults:
            if fault.remaining > 0 and (fault.match is None or fault.match(method, path)):
                fault.remaining -= 1
                return fault
        return None

    # forwarding
    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        fault = self._take_fault(request.method, request.path)
        self.requests.append(
            RecordedRequest(
                method=request.method,
                path=request.path,
                query=dict(request.query),
                content_type=request.headers.get("Content-Type"),
                body=body,
                injected_status=fault.status if fault else None,
            )
        )
        if fault is not None:
            return self._fault_response(fault)
        assert self._session is not None
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP}
        try:
            upstream = await self._session.request(
                request.method,
                self.upstream_url + request.rel_url.raw_path_qs,
                headers=headers,
                data=body if body else None,
                allow_redirects=False,
            )
        except aiohttp.ClientConnectionError:
            # The API server is down (e.g. between stop_apiserver and start_apiserver): answer
            # the way a load balancer in front of it would.
            return self._status_response(503, "upstream API server unreachable", None)
        async with upstream:
            response = web.StreamResponse(status=upstream.status, reason=upstream.reason)
            for key, value in upstream.headers.items():
                if key.lower() not in _HOP_BY_HOP:
                    response.headers.add(key, value)
            await response.prepare(request)
            self._streams.add(upstream)
            self._stream_opened.set()
            try:
                async for chunk in upstream.content.iter_any():
                    await response.write(chunk)
            except (aiohttp.ClientError, ConnectionError):
                # Upstream went away (apiserver stopped, drop_streams): cut the client too,
                # so it sees a broken stream rather than a clean end.
                if request.transport is not None:
                    request.transport.close()
                return response
            finally:
                self._streams.discard(upstream)
            await response.write_eof()
            return response

    @classmethod
    def _fault_response(cls, fault: _Fault) -> web.Response:
        message = f"fault injected by the test proxy ({fault.status})"
        return cls._status_response(fault.status, message, fault.retry_after)

    @staticmethod
    def _status_response(status: int, message: str, retry_after: int | None) -> web.Response:
        """A Kubernetes `Status` failure body, as the API server itself would send."""
        status_body = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": message,
            "reason": _REASONS.get(status, "InternalError"),
            "code": status,
        }
        headers = {}
        if retry_after is not None:
            headers["Retry-After"] = str(retry_after)
        return web.json_response(status_body, status=status, headers=headers)
