"""Routes of the webhook port and the one error middleware.

`RequestRejected` becomes its HTTP status with a short JSON message; aiohttp's own 404/405
become the same JSON shape; anything else is a bug: logged with its traceback, answered with
a plain 500 and no detail. Each delivery gets exactly one log line.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from aiohttp import web

from receiver.errors import RequestRejected
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


def _json_error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except RequestRejected as exc:
        return _json_error(exc.http_status, exc.message)
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
            except RequestRejected as exc:
                status = exc.http_status
                fields.setdefault("outcome", exc.outcome)
                fields["error"] = exc.message
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
