"""The health port (`/healthz`, `/readyz`, the delivery inspector) and the metrics port.

`/readyz` is 200 only once every watch has completed its first list, so a rollout does not
route webhooks to a replica that would answer 404 for receivers it has not seen yet.
"""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from receiver.http import inspector
from receiver.inspector.journal import Journal


def health_app(
    *, ready: Callable[[], tuple[bool, str]], journal: Journal | None = None, replica: str = ""
) -> web.Application:
    """`journal` adds the delivery inspector's routes (see `http/inspector.py`)."""

    async def healthz(_request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def readyz(_request: web.Request) -> web.Response:
        is_ready, detail = ready()
        return web.Response(status=200 if is_ready else 503, text=detail)

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    if journal is not None:
        inspector.add_routes(app, journal=journal, replica=replica)
    return app


def metrics_app(*, registry: CollectorRegistry) -> web.Application:
    async def metrics(_request: web.Request) -> web.Response:
        response = web.Response(body=generate_latest(registry))
        response.headers["Content-Type"] = CONTENT_TYPE_LATEST
        return response

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    return app
