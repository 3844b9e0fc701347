"""Routes of the webhook port and the one error middleware.

The only place that turns errors into HTTP statuses (`ANSWERS`): a refused delivery, a full or
draining queue and missing signing keys each get their status with a short JSON message;
aiohttp's own 404/405 get the same JSON shape; anything else is a bug: logged with its
traceback, answered with a plain 500 and no detail. Each delivery gets exactly one log line.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from aiohttp import web

from receiver.errors import (
    AuthenticationFailed,
    JwksUnavailable,
    MalformedPayload,
    PayloadTooLarge,
    QueueRefused,
    ReceiverError,
    ReceiverNotReady,
    RequestRejected,
    UnknownHook,
)
from receiver.http import limits
from receiver.metrics import Metrics
from receiver.pipeline import Outcome, Pipeline
from receiver.sources.base import RawDelivery

log = structlog.get_logger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
PipelineStage = Callable[[web.Request, RawDelivery, dict[str, Any]], Awaitable[Outcome]]
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
    QueueRefused: (503, "unavailable"),
    JwksUnavailable: (503, "unavailable"),
}


def answer_for(exc: BaseException) -> tuple[int, str] | None:
    """The status and outcome an error answers with; None for a bug (answered 500)."""
    for cls in type(exc).__mro__:
        answer = ANSWERS.get(cls)
        if answer is not None:
            return answer
    return None


def _json_error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ReceiverError as exc:
        answer = answer_for(exc)
        if answer is None:
            log.exception("unhandled_error", path=request.path, method=request.method)
            return web.Response(status=500, text="internal error")
        return _json_error(answer[0], str(exc))
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        message = {404: "not found", 405: "method not allowed"}.get(exc.status, exc.reason)
        return _json_error(exc.status, message)
    except Exception:
        log.exception("unhandled_error", path=request.path, method=request.method)
        return web.Response(status=500, text="internal error")


def webhook_app(*, pipeline: Pipeline, metrics: Metrics, max_body_bytes: int) -> web.Application:
    app = web.Application(middlewares=[error_middleware], client_max_size=max_body_bytes)

    def delivery_handler(path_kind: str, handle: PipelineStage) -> Handler:
        async def handler(request: web.Request) -> web.Response:
            started = time.perf_counter()
            fields: dict[str, Any] = {"path_kind": path_kind}
            status = 500
            try:
                delivery = await limits.read_delivery(request, max_body_bytes=max_body_bytes)
                outcome = await handle(request, delivery, fields)
                status = outcome.http_status
                return web.json_response(outcome.body, status=status)
            except ReceiverError as exc:
                answer = answer_for(exc)
                if answer is not None:
                    status = answer[0]
                    fields.setdefault("outcome", answer[1])
                    fields["error"] = str(exc)
                raise
            finally:
                source = str(fields.get("type", "unknown"))
                latency = time.perf_counter() - started
                metrics.deliveries.labels(source, str(fields.get("outcome", "error"))).inc()
                metrics.delivery_latency.labels(source).observe(latency)
                log.info("delivery", status=status, latency_ms=round(latency * 1000, 2), **fields)

        return handler

    hook = delivery_handler(
        "receiver",
        lambda request, delivery, fields: pipeline.handle_hook(
            request.path, delivery, fields=fields
        ),
    )
    discovery = delivery_handler(
        "discovery",
        lambda request, delivery, fields: pipeline.handle_discovery(
            request.match_info["endpoint"],
            delivery,
            fields=fields,
            path_token=request.match_info.get("token"),
        ),
    )
    for method in _ACCEPTED_METHODS:
        app.router.add_route(method, HOOK_ROUTE, hook)
        app.router.add_route(method, DISCOVERY_ROUTE, discovery)
        app.router.add_route(method, DISCOVERY_TOKEN_ROUTE, discovery)
    return app
