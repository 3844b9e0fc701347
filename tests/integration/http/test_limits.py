"""The body cap and broken bodies at the HTTP edge (dry-run app, no cluster needed)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from structlog.testing import capture_logs

from receiver.app import App
from tests.support.running import running_app

EXAMPLES = Path(__file__).resolve().parents[3] / "config" / "examples"
HOOK = "/hook/1ef018a52483616dc22886e47a4cabdcbaa31acc4b3ccb1ece632f152db67bc6"


@pytest.fixture
async def app() -> AsyncIterator[App]:
    async with running_app(kubeconfig=None, inventory=EXAMPLES, max_body_bytes=4096) as running:
        yield running


async def test_chunked_body_over_the_cap_is_413(app: App) -> None:
    async def chunks() -> AsyncGenerator[bytes, None]:
        for _ in range(10):
            yield b"x" * 1024

    url = f"http://127.0.0.1:{app.ports['webhook']}{HOOK}"
    async with aiohttp.ClientSession() as session, session.post(url, data=chunks()) as response:
        assert response.status == 413
        assert "4096" in (await response.json())["error"]


async def test_body_cut_short_is_a_malformed_delivery_not_a_crash(app: App) -> None:
    with capture_logs() as logs:
        _reader, writer = await asyncio.open_connection("127.0.0.1", app.ports["webhook"])
        writer.write(f"POST {HOOK} HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{{".encode())
        await writer.drain()
        writer.close()
        await writer.wait_closed()
        for _ in range(200):
            if any(entry["event"] == "delivery" for entry in logs):
                break
            await asyncio.sleep(0.01)
    (delivery,) = [entry for entry in logs if entry["event"] == "delivery"]
    assert delivery["outcome"] == "malformed" and delivery["status"] == 400
    assert not [entry for entry in logs if entry["event"] == "unhandled_error"]
