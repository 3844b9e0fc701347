"""Routes of the webhook port and the one error middleware.

The only place that turns errors into HTTP statuses (`ANSWERS`): a refused delivery, a full or
draining queue and missing signing keys each get their status with a short JSON message;
aiohttp's own 404/405 get the same JSON shape; anything else is a bug: logged with its
traceback (never the path, which can be a credential), answered with a 500 and no detail.
The pipeline's `Delivery` record of each delivery gives its answer, its one log line and its
metrics; a delivery that shutdown cancels is logged too (outcome `cancelled`, no status:
nothing was answered). Every message answered goes through `logs.redact`; 429 and 503 answers
carry Retry-After. The middleware also applies the per-client rate (429) before anything is
read, and tells the connection guard (`connections.py`) when a request starts and ends.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from aiohttp import web
from aiohttp.typedefs import Middleware

from receiver import logs
from receiver.config import LimitSettings
from receiver.errors import (
    AuthenticationFailed,
    BodiesInFlight,
    BodyTimeout,
    FilterFailed,
    JwksUnavailable,
    MalformedPayload,
    PayloadTooLarge,
    QueueRefused,
    RateLimited,
    ReceiverError,
    ReceiverNotReady,
    RequestRejected,
    ResourcesUnreadable,
    UnknownHook,
    UnsupportedEncoding,
)
from receiver.http import connections, limits
from receiver.inspector import capture
from receiver.inspector.journal import Journal
from receiver.metrics import Metrics
from receiver.pipeline import DISCOVERY_PATH, RECEIVER_PATH, Delivery, Outcome, Pipeline
from receiver.sources.base import RawDelivery

log = structlog.get_logger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
PipelineEntry = Callable[[web.Request, RawDelivery], Awaitable[Delivery]]
HOOK_ROUTE = "/hook/{digest}"
DISCOVERY_ROUTE = "/webhooks/{endpoint}"
DISCOVERY_TOKEN_ROUTE = "/webhooks/{endpoint}/{token}"
_ACCEPTED_METHODS = ("POST", "PUT")

# Error -> (HTTP status, outcome label of the delivery's log line and metric). A subclass not
# listed answers as its nearest listed base. The messages of these errors are safe to show.
ANSWERS: dict[type[ReceiverError], tuple[int, str]] = {
    RequestRejected: (400, "rejected"),
    UnknownHook: (404, "unknown_hook"),
    PayloadTooLarge: (413, "too_large"),
    AuthenticationFailed: (401, "unauthorized"),
    MalformedPayload: (400, "malformed"),
    ReceiverNotReady: (503, "not_ready"),
    FilterFailed: (422, "filter_failed"),
    ResourcesUnreadable: (503, "unavailable"),
    QueueRefused: (503, "unavailable"),
    JwksUnavailable: (503, "unavailable"),
    BodyTimeout: (408, "timeout"),
    UnsupportedEncoding: (415, "unsupported_encoding"),
    RateLimited: (429, "rate_limited"),
    BodiesInFlight: (503, "busy"),
}


def answer_for(exc: BaseException) -> tuple[int, str] | None:
    """The status and outcome an error answers with; None for a bug (answered 500)."""
    for cls in type(exc).__mro__:
        answer = ANSWERS.get(cls)
        if answer is not None:
            return answer
    return None


def _json_error(status: int, message: str, *, retry_after_s: int | None = None) -> web.Response:
    response = web.json_response({"error": logs.redact(message)}, status=status)
    if retry_after_s is None and status in (429, 503):
        retry_after_s = 1
    if retry_after_s is not None:
        response.headers["Retry-After"] = str(retry_after_s)
    return response


def _log_unhandled(request: web.Request) -> web.Response:
    route = request.match_info.route.resource
    log.exception(
        "unhandled_error",
        route=route.canonical if route is not None else None,
        method=request.method,
    )
    return _json_error(500, "internal error")


def edge_middleware(
    *, rate: limits.ClientRate, trusted: tuple[limits.Network, ...], metrics: Metrics
) -> Middleware:
    @web.middleware
    async def edge(request: web.Request, handler: Handler) -> web.StreamResponse:
        connection = connections.handler_of(request)
        if connection is not None:
            connection.request_started()
        try:
            peer = request.transport.get_extra_info("peername") if request.transport else None
            key = limits.client_key(
                peer=str(peer[0]) if peer else None,
                forwarded_for=request.headers.getall("X-Forwarded-For", []),
                trusted=trusted,
            )
            wait_s = rate.wait_s(key, now_s=time.monotonic())
            if wait_s > 0:
                metrics.limit_refusals.labels("client_rate").inc()
                raise RateLimited(
                    "too many requests from this client", retry_after_s=math.ceil(wait_s)
                )
            return await handler(request)
        except ReceiverError as exc:
            answer = answer_for(exc)
            if answer is None:
                return _log_unhandled(request)
            retry_after_s = exc.retry_after_s if isinstance(exc, RateLimited) else None
            return _json_error(answer[0], str(exc), retry_after_s=retry_after_s)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            message = {404: "not found", 405: "method not allowed"}.get(exc.status, exc.reason)
            return _json_error(exc.status, message)
        except Exception:
            return _log_unhandled(request)
        finally:
            if connection is not None:
                connection.request_finished()

    return edge


def webhook_app(
    *,
    pipeline: Pipeline,
    metrics: Metrics,
    max_body_bytes: int,
    limit_settings: LimitSettings,
    journal: Journal | None = None,
    wall_clock: Callable[[], float] = time.time,
) -> web.Application:
    """The webhook port. With `journal`, each delivery's record also goes to the inspector."""
    rate = limits.ClientRate(
        rate_per_s=limit_settings.client_rate_per_s, burst=limit_settings.client_burst
    )
    app = web.Application(
        middlewares=[
            edge_middleware(
                rate=rate,
                trusted=limits.trusted_networks(limit_settings.trusted_proxies),
                metrics=metrics,
            )
        ],
        client_max_size=max_body_bytes,
    )
    budget = limits.BodyBudget(max_bytes=limit_settings.max_body_bytes_in_flight, metrics=metrics)

    def delivery_handler(path_kind: str, handle: PipelineEntry) -> Handler:
        async def handler(request: web.Request) -> web.Response:
            started = time.perf_counter()
            received_at_s = wall_clock()
            record: Delivery | None = None
            status: int | None = 500
            hold = limits.Hold(budget)
            try:
                try:
                    raw = await limits.read_delivery(
                        request,
                        max_body_bytes=max_body_bytes,
                        body_timeout_s=limit_settings.body_timeout_s,
                        hold=hold,
                        metrics=metrics,
                        path_token=request.match_info.get("token"),
                    )
                except ReceiverError as exc:
                    record = Delivery(path_kind, error=exc)
                else:
                    record = await handle(request, raw)
                if record.error is None:
                    status = 200
                    return web.json_response(record.answer(), status=status)
                answer = answer_for(record.error)
                if answer is None:
                    raise record.error  # a bug: the middleware logs it and answers 500
                status = answer[0]
                return _json_error(status, str(record.error))
            except asyncio.CancelledError:
                status = None  # shutdown cut the request short: nothing was answered
                raise
            finally:
                hold.release()
                latency_s = time.perf_counter() - started
                outcome = _account(
                    record, path_kind=path_kind, status=status, latency_s=latency_s, metrics=metrics
                )
                if journal is not None and status is not None:
                    # No await since the pipeline queued its requests: the entry is in the
                    # journal before any worker takes them (so it hears their patches).
                    journal.add(
                        capture.entry_for(
                            record or Delivery(path_kind),
                            http_status=status,
                            outcome=outcome,
                            latency_ms=latency_s * 1000,
                            received_at_s=received_at_s,
                        )
                    )

        return handler

    hook = delivery_handler(
        RECEIVER_PATH, lambda request, raw: pipeline.handle_hook(request.path, raw)
    )
    discovery = delivery_handler(
        DISCOVERY_PATH,
        lambda request, raw: pipeline.handle_discovery(request.match_info["endpoint"], raw),
    )
    for method in _ACCEPTED_METHODS:
        app.router.add_route(method, HOOK_ROUTE, hook)
        app.router.add_route(method, DISCOVERY_ROUTE, discovery)
        app.router.add_route(method, DISCOVERY_TOKEN_ROUTE, discovery)
    return app


def _account(
    record: Delivery | None,
    *,
    path_kind: str,
    status: int | None,
    latency_s: float,
    metrics: Metrics,
) -> str:
    """The delivery's one log line and its metrics, from its record (None: a bug or, with no
    status, shutdown cut it short); returns the outcome they name."""
    fields: dict[str, Any] = {"path_kind": path_kind}
    outcome = "error"
    source = "unknown"
    if record is not None:
        if record.receiver is not None:
            fields["receiver"] = record.receiver
        if record.endpoint is not None:
            fields["endpoint"] = record.endpoint
        if record.source is not None:
            source = fields["type"] = record.source
        if record.event_type is not None:
            fields["event_type"] = record.event_type
        if record.events:
            fields["delivery_id"] = record.delivery_id
        if record.outcome is not None:
            outcome = record.outcome
            if record.outcome is Outcome.ACCEPTED or record.outcome is Outcome.UNROUTED:
                fields["targets"] = [str(target) for target in record.targets]
        elif record.error is not None:
            answer = answer_for(record.error)
            if answer is not None:
                outcome = answer[1]
                fields["error"] = str(record.error)
    if status is None:
        outcome = "cancelled"
    fields["outcome"] = outcome
    metrics.deliveries.labels(source, outcome).inc()
    metrics.delivery_latency.labels(source).observe(latency_s)
    log.info("delivery", status=status, latency_ms=round(latency_s * 1000, 2), **fields)
    return outcome
