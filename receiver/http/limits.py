"""Read a request once, with a cap, into a `RawDelivery`; and the limits shared by all requests.

A declared Content-Length over the cap is refused before reading; a body that grows over the
cap while streaming is refused as soon as it does. Either way: 413, nothing buffered beyond
the cap. The body must arrive within `body_timeout_s` (else 408), and every byte held counts
against one budget for all connections (`BodyBudget`: beyond it, 503 with Retry-After).
A `Content-Encoding` other than identity is refused (415): forges sign the bytes they send and
none compresses its deliveries, so the edge never inflates a body.
`ClientRate` is the per-client token bucket (pure: the clock is an argument); `client_key`
takes the client from X-Forwarded-For only when the peer is a trusted proxy.
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass

from aiohttp import web

from receiver.errors import (
    BodiesInFlight,
    BodyTimeout,
    MalformedPayload,
    PayloadTooLarge,
    ReceiverError,
    UnsupportedEncoding,
)
from receiver.metrics import Metrics
from receiver.sources.base import RawDelivery

_CHUNK_BYTES = 64 * 1024
_IDENTITY = frozenset({"", "identity"})
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(slots=True)
class BodyBudget:
    """Bytes of request bodies held at once, across every connection of the port."""

    max_bytes: int
    metrics: Metrics
    held: int = 0

    def take(self, size: int) -> None:
        if self.held + size > self.max_bytes:
            self.metrics.limit_refusals.labels("body_bytes_in_flight").inc()
            raise BodiesInFlight("too many request bodies in flight: retry later")
        self.held += size
        self.metrics.body_bytes_in_flight.set(self.held)

    def give_back(self, size: int) -> None:
        self.held -= size
        self.metrics.body_bytes_in_flight.set(self.held)


@dataclass(slots=True)
class Hold:
    """One request's share of the budget, given back once it is answered."""

    budget: BodyBudget
    size: int = 0

    def grow(self, size: int) -> None:
        self.budget.take(size)
        self.size += size

    def release(self) -> None:
        self.budget.give_back(self.size)
        self.size = 0


async def read_delivery(
    request: web.Request,
    *,
    max_body_bytes: int,
    body_timeout_s: float,
    hold: Hold,
    metrics: Metrics,
    path_token: str | None = None,
) -> RawDelivery:
    """`path_token`: the token of `/webhooks/<endpoint>/<token>`, kept for the verifier."""
    encoding = request.headers.get("Content-Encoding", "").strip().lower()
    if encoding not in _IDENTITY:
        raise UnsupportedEncoding(
            "Content-Encoding is not supported: send the body uncompressed, as forges do"
        )
    declared = request.content_length
    if declared is not None and declared > max_body_bytes:
        raise PayloadTooLarge(f"body is larger than the limit of {max_body_bytes} bytes")
    headers = {name.lower(): value for name, value in request.headers.items()}
    if declared is not None:
        hold.grow(declared)
    body = bytearray()
    failure: ReceiverError | None = None
    try:
        async with asyncio.timeout(body_timeout_s):
            while chunk := await request.content.read(_CHUNK_BYTES):
                if declared is None:
                    if len(body) + len(chunk) > max_body_bytes:
                        raise PayloadTooLarge(
                            f"body is larger than the limit of {max_body_bytes} bytes"
                        )
                    hold.grow(len(chunk))
                body += chunk
    except ReceiverError as exc:
        failure = exc
    except TimeoutError:
        metrics.connections_closed.labels("body_timeout").inc()
        failure = BodyTimeout(f"body not received within {body_timeout_s:g} s")
    except (OSError, asyncio.IncompleteReadError, web.HTTPException) as exc:
        # The stream reader keeps this exception, and its traceback keeps this frame: drop the
        # traceback so neither holds on to a partial body until a full garbage collection.
        exc.__traceback__ = None
        failure = MalformedPayload("connection closed before the body was complete")
    if failure is None and declared is not None and len(body) < declared:
        failure = MalformedPayload("body ended before its Content-Length")
    if failure is not None:
        body.clear()  # the partial body is freed now, whatever still refers to this frame
        # Raised outside the `except` so the error carries no context chain to the reset.
        raise failure
    return RawDelivery(
        headers=headers, body=bytes(body), query=dict(request.query), path_token=path_token
    )


class ClientRate:
    """Requests per second per client: a token bucket each (`burst` deep, `rate_per_s` refill).

    Pure: `now_s` is an argument. At most `max_clients` buckets are kept; the least recently
    seen are forgotten first (a forgotten client starts again with a full bucket).
    """

    def __init__(self, *, rate_per_s: float, burst: int, max_clients: int = 100_000) -> None:
        self._rate_per_s = rate_per_s
        self._burst = float(burst)
        self._max_clients = max_clients
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, at_s)

    def wait_s(self, key: str, *, now_s: float) -> float:
        """0 when the request may go ahead (a token is spent), else seconds until one may."""
        if self._rate_per_s <= 0:
            return 0.0
        tokens, at_s = self._buckets.pop(key, (self._burst, now_s))
        tokens = min(self._burst, tokens + (now_s - at_s) * self._rate_per_s)
        wait_s = 0.0
        if tokens >= 1:
            tokens -= 1
        else:
            wait_s = (1 - tokens) / self._rate_per_s
        self._buckets[key] = (tokens, now_s)
        if len(self._buckets) > self._max_clients:
            del self._buckets[next(iter(self._buckets))]
        return wait_s


def trusted_networks(items: Sequence[str]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(item, strict=False) for item in items)


def client_key(
    *, peer: str | None, forwarded_for: Sequence[str], trusted: tuple[Network, ...]
) -> str:
    """The client a request counts against: the peer, or, when the peer is a trusted proxy,
    the right-most X-Forwarded-For address that is not one. IPv6 clients count by /64."""
    hops = [hop.strip() for value in forwarded_for for hop in value.split(",")]
    current = _address(peer)
    while current is not None and hops and any(current in net for net in trusted):
        current = _address(hops.pop())
    if current is None:
        return peer or "unknown"
    if isinstance(current, ipaddress.IPv6Address):
        if current.ipv4_mapped is not None:
            return str(current.ipv4_mapped)
        return str(ipaddress.ip_network(f"{current}/64", strict=False))
    return str(current)


def _address(text: str | None) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    if not text:
        return None
    try:
        return ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        return None
