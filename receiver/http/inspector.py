"""The delivery inspector's routes, served on the health port only (never the webhook port).

Read-only: GET `/deliveries` (the page, with filters `repo`, `outcome`, `source`, `failed`),
GET `/deliveries/<id>` (one delivery), and the same as JSON under `/api/deliveries`. Every
answer names the replica that holds the journal, since each replica keeps only its own.
"""

from __future__ import annotations

from collections.abc import Mapping

from aiohttp import web

from receiver.inspector import views
from receiver.inspector.journal import Filter, Journal

_HTML = "text/html"
# Pages are rendered per request; tell browsers and proxies not to keep them.
_NO_STORE = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}
# The page loads nothing and runs no script: say so to the browser as well.
_PAGE_HEADERS = {
    **_NO_STORE,
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
}


def _selection(query: Mapping[str, str]) -> Filter:
    return Filter(
        repository=query.get("repo") or None,
        outcome=query.get("outcome") or None,
        source=query.get("source") or None,
        failed=query.get("failed", "").lower() in ("1", "true", "yes", "on"),
    )


def _limit(query: Mapping[str, str]) -> int | None:
    text = query.get("limit")
    if text is None:
        return None
    if not text.isdigit():
        raise web.HTTPBadRequest(
            text='{"error": "limit must be a whole number"}', content_type="application/json"
        )
    return int(text)


def add_routes(app: web.Application, *, journal: Journal, replica: str) -> None:
    async def page(request: web.Request) -> web.Response:
        text = views.render_list(journal, selection=_selection(request.query), replica=replica)
        return web.Response(text=text, content_type=_HTML, headers=_PAGE_HEADERS)

    async def detail(request: web.Request) -> web.Response:
        seq = request.match_info["seq"]
        entry = journal.get(int(seq)) if seq.isdigit() else None
        if entry is None:
            return web.Response(
                status=404,
                text=views.render_missing(seq, replica=replica),
                content_type=_HTML,
                headers=_PAGE_HEADERS,
            )
        text = views.render_detail(entry, replica=replica)
        return web.Response(text=text, content_type=_HTML, headers=_PAGE_HEADERS)

    async def api_list(request: web.Request) -> web.Response:
        body = views.list_json(
            journal,
            selection=_selection(request.query),
            replica=replica,
            limit=_limit(request.query),
        )
        return web.json_response(body, headers=_NO_STORE)

    async def api_detail(request: web.Request) -> web.Response:
        seq = request.match_info["seq"]
        entry = journal.get(int(seq)) if seq.isdigit() else None
        if entry is None:
            return web.json_response(
                {"error": f"no delivery {seq!r} on replica {replica}", "replica": replica},
                status=404,
                headers=_NO_STORE,
            )
        return web.json_response(
            {"replica": replica, "delivery": views.entry_json(entry)}, headers=_NO_STORE
        )

    app.router.add_get(views.LIST_PATH, page)
    app.router.add_get(views.LIST_PATH + "/{seq}", detail)
    app.router.add_get(views.API_PATH, api_list)
    app.router.add_get(views.API_PATH + "/{seq}", api_detail)
