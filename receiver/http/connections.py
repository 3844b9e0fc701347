"""Connection limits of the webhook port: how many at once, how long for headers, how long idle.

aiohttp bounds none of these by default (a connection may sit idle for an hour, headers may
arrive a byte at a time forever), so `GuardedRunner` serves the app through a request handler
that: refuses a connection over `max_connections` with a canned 503 and closes it at once;
closes a connection whose headers took longer than `header_timeout_s` (408) or that sat idle
for `idle_timeout_s` between requests; and answers a request that is not HTTP with a fixed 400
that never echoes what was sent (aiohttp's own answer repeats the offending header line, which
can be a token), and drops an `Expect` it does not know (aiohttp would echo it in a 417).
`request_started`/`request_finished` are called by the edge's middleware.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

import structlog
from aiohttp import web
from aiohttp.web_protocol import RequestHandler
from multidict import CIMultiDict, CIMultiDictProxy

from receiver.metrics import Metrics

log = structlog.get_logger(__name__)


def _canned(status_line: str, message: str, *, extra: str = "") -> bytes:
    """A complete answer written straight to the socket (no request object exists yet)."""
    body = json.dumps({"error": message}).encode()
    head = (
        f"HTTP/1.1 {status_line}\r\n{extra}Content-Type: application/json\r\n"
        f"Connection: close\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


_REFUSED = _canned(
    "503 Service Unavailable", "too many open connections", extra="Retry-After: 1\r\n"
)
_HEADER_TIMEOUT = _canned("408 Request Timeout", "headers not received in time")
_IDLE, _HEADERS, _REQUEST = "idle", "headers", "request"


@dataclass(slots=True)
class ConnectionGuard:
    """The connection limits of one port and the count they act on."""

    max_connections: int
    header_timeout_s: float
    idle_timeout_s: float
    metrics: Metrics
    open: int = 0

    def admit(self) -> bool:
        if self.open >= self.max_connections:
            self.metrics.limit_refusals.labels("connections").inc()
            return False
        self.open += 1
        self.metrics.open_connections.set(self.open)
        return True

    def release(self) -> None:
        self.open -= 1
        self.metrics.open_connections.set(self.open)


class GuardedHandler(RequestHandler):
    """aiohttp's request handler with the guard's limits (see the module docstring)."""

    __slots__ = ("_admitted", "_guard", "_phase", "_timer")

    def __init__(self, manager: web.Server, *, guard: ConnectionGuard, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._guard = guard
        self._admitted = False
        self._phase = _IDLE
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if not self._guard.admit():
            assert isinstance(transport, asyncio.Transport)
            transport.write(_REFUSED)
            transport.close()
            return
        self._admitted = True
        super().connection_made(transport)
        self._arm(_IDLE)

    def connection_lost(self, exc: BaseException | None) -> None:
        if not self._admitted:
            return
        self._admitted = False
        self._disarm()
        self._guard.release()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._phase == _IDLE and data:
            self._arm(_HEADERS)
        super().data_received(data)

    def request_started(self) -> None:
        """The headers are in and a handler runs: no connection timer until it answers."""
        self._disarm()
        self._phase = _REQUEST

    def request_finished(self) -> None:
        self._arm(_IDLE)

    def handle_error(
        self,
        request: Any,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        """aiohttp's answer to a request it could not parse (or a handler crash), made safe:
        one log line naming the error class only, a fixed JSON body, the connection closed."""
        reason = "bad_request" if status == 400 else "server_error"
        self._guard.metrics.connections_closed.labels(reason).inc()
        log.warning(
            "http_request_refused",
            status=status,
            error=type(exc).__name__ if exc is not None else None,
        )
        if request.writer.output_size > 0:
            raise ConnectionError("answer already started")
        text = "malformed HTTP request" if status == 400 else "internal error"
        response = web.json_response({"error": text}, status=status)
        response.force_close()
        return response

    def _arm(self, phase: str) -> None:
        self._disarm()
        self._phase = phase
        delay_s = self._guard.idle_timeout_s if phase == _IDLE else self._guard.header_timeout_s
        self._timer = asyncio.get_running_loop().call_later(delay_s, self._expire)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _expire(self) -> None:
        self._timer = None
        if self._phase == _REQUEST or self.transport is None:
            return
        if self._phase == _HEADERS:
            self._guard.metrics.connections_closed.labels("header_timeout").inc()
            self.transport.write(_HEADER_TIMEOUT)
        else:
            self._guard.metrics.connections_closed.labels("idle_timeout").inc()
        self.force_close()


class GuardedServer(web.Server):
    def __init__(self, *args: Any, guard: ConnectionGuard, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.guard = guard
        plain_factory = self.request_factory

        def request_factory(message: Any, *args: Any) -> web.BaseRequest:
            # aiohttp answers an unknown `Expect` with 417 and the value echoed back (it can be
            # a token). RFC 9110 lets a server ignore expectations it does not know: drop them.
            expect = message.headers.get("Expect")
            if expect is not None and expect.strip().lower() != "100-continue":
                headers = CIMultiDict(message.headers)
                del headers["Expect"]
                message = message._replace(headers=CIMultiDictProxy(headers))
            return plain_factory(message, *args)

        self.request_factory = request_factory

    def __call__(self) -> GuardedHandler:
        return GuardedHandler(self, loop=self._loop, guard=self.guard, **self._kwargs)


class GuardedRunner(web.AppRunner):
    """An `AppRunner` whose connections are `GuardedHandler`s."""

    def __init__(self, app: web.Application, *, guard: ConnectionGuard, **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self._guard = guard

    async def _make_server(self) -> web.Server:
        plain = await super()._make_server()
        return GuardedServer(
            plain.request_handler,
            request_factory=plain.request_factory,
            handler_cancellation=plain.handler_cancellation,
            loop=asyncio.get_running_loop(),
            guard=self._guard,
            **plain._kwargs,
        )


def handler_of(request: web.Request) -> GuardedHandler | None:
    protocol = request.protocol
    return protocol if isinstance(protocol, GuardedHandler) else None
