"""Read a request once, with a cap, into a `RawDelivery` (lower-cased header names).

A declared Content-Length over the cap is refused before reading; a body that grows over the
cap while streaming is refused as soon as it does. Either way: 413, nothing buffered beyond
the cap.
"""

from __future__ import annotations

import asyncio

from aiohttp import web

from receiver.errors import MalformedPayload, PayloadTooLarge
from receiver.sources.base import RawDelivery

_CHUNK_BYTES = 64 * 1024


async def read_delivery(
    request: web.Request, *, max_body_bytes: int, path_token: str | None = None
) -> RawDelivery:
    """`path_token`: the token of `/webhooks/<endpoint>/<token>`, kept for the verifier."""
    too_large = PayloadTooLarge(f"body is larger than the limit of {max_body_bytes} bytes")
    if request.content_length is not None and request.content_length > max_body_bytes:
        raise too_large
    headers = {name.lower(): value for name, value in request.headers.items()}
    if request.content_length is not None:
        # Declared and within the cap: one read (aiohttp stops at the declared length).
        try:
            body = (
                await request.content.readexactly(request.content_length)
                if request.content_length
                else b""
            )
        except (asyncio.IncompleteReadError, ConnectionResetError):
            raise MalformedPayload("body ended before its Content-Length") from None
        return RawDelivery(
            headers=headers, body=body, query=dict(request.query), path_token=path_token
        )
    chunks: list[bytes] = []
    size = 0
    while True:
        try:
            chunk = await request.content.read(_CHUNK_BYTES)
        except ConnectionResetError:
            raise MalformedPayload("connection closed while the body was sent") from None
        if not chunk:
            break
        size += len(chunk)
        if size > max_body_bytes:
            raise too_large
        chunks.append(chunk)
    return RawDelivery(
        headers=headers,
        body=b"".join(chunks),
        query=dict(request.query),
        path_token=path_token,
    )
