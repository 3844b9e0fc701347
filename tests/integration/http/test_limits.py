"""The body cap and broken bodies at the HTTP edge (dry-run app, no cluster needed)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from structlog.testing import capture_logs

from receiver.app import App
from tests.support.edge import edge_app, hook_path, raw_exchange
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


# -- the limits of issue 17, each through real sockets --------------------------------------


async def _get_metrics(app: App) -> str:
    url = f"http://127.0.0.1:{app.ports['metrics']}/metrics"
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return await response.text()


async def test_a_body_slower_than_the_body_limit_is_408(tmp_path: Path) -> None:
    async with edge_app(tmp_path, limits={"body_timeout_s": 0.5}) as app:
        reader, writer = await asyncio.open_connection("127.0.0.1", app.ports["webhook"])
        writer.write(
            f"POST {hook_path('github-hook')} HTTP/1.1\r\nHost: x\r\n"
            "Content-Length: 100\r\n\r\n{".encode()
        )
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), 5)
        writer.close()
        assert answer.split(b"\r\n")[0] == b"HTTP/1.1 408 Request Timeout"
        assert 'connections_closed_total{reason="body_timeout"} 1.0' in await _get_metrics(app)


async def test_connections_over_the_limit_are_refused_at_once(tmp_path: Path) -> None:
    async with edge_app(tmp_path, limits={"max_connections": 3}) as app:
        port = app.ports["webhook"]
        held = [await asyncio.open_connection("127.0.0.1", port) for _ in range(3)]
        started = asyncio.get_running_loop().time()
        answer = await raw_exchange(port, b"", timeout_s=2)
        assert answer.split(b"\r\n")[0] == b"HTTP/1.1 503 Service Unavailable"
        assert b"Retry-After: 1" in answer
        assert asyncio.get_running_loop().time() - started < 1
        for _, writer in held:
            writer.close()
        await asyncio.sleep(0.1)
        answer = await raw_exchange(
            port, b"GET /nothing HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        assert answer.split(b"\r\n")[0] == b"HTTP/1.1 404 Not Found"
        text = await _get_metrics(app)
        assert 'limit_refusals_total{limit="connections"} 1.0' in text
        assert "gitops_receiver_open_connections 0.0" in text


async def test_bodies_over_the_bytes_in_flight_are_503_with_retry_after(tmp_path: Path) -> None:
    async with edge_app(
        tmp_path, max_body_bytes=4096, limits={"max_body_bytes_in_flight": 6000}
    ) as app:
        port = app.ports["webhook"]
        head = (
            f"POST {hook_path('github-hook')} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
            "Content-Length: 4000\r\n\r\n"
        )
        _reader, first = await asyncio.open_connection("127.0.0.1", port)
        first.write(head.encode() + b"{")  # holds 4000 bytes of the budget while it trickles
        await first.drain()
        await asyncio.sleep(0.2)
        answer = await raw_exchange(port, head.encode() + b"{" + b" " * 3999)
        first.close()
        assert answer.split(b"\r\n")[0] == b"HTTP/1.1 503 Service Unavailable"
        assert b"Retry-After: 1" in answer
        assert 'limit_refusals_total{limit="body_bytes_in_flight"} 1.0' in await _get_metrics(app)


async def test_client_rate_is_429_and_forwarded_for_counts_only_behind_a_trusted_proxy(
    tmp_path: Path,
) -> None:
    limits = {"client_rate_per_s": 0.5, "client_burst": 2, "trusted_proxies": ["127.0.0.0/8"]}
    async with edge_app(tmp_path, limits=limits) as app:
        url = f"http://127.0.0.1:{app.ports['webhook']}/nothing"

        async def get(client: str) -> aiohttp.ClientResponse:
            async with (
                aiohttp.ClientSession() as session,
                session.get(
                    url, headers={"X-Forwarded-For": f"198.51.100.7, {client}"}
                ) as response,
            ):
                return response

        assert [(await get("203.0.113.1")).status for _ in range(2)] == [404, 404]
        refused = await get("203.0.113.1")
        assert refused.status == 429 and refused.headers["Retry-After"] == "2"
        assert (await get("203.0.113.2")).status == 404  # another client, its own bucket
        assert 'limit_refusals_total{limit="client_rate"} 1.0' in await _get_metrics(app)

    async with edge_app(tmp_path, limits={**limits, "trusted_proxies": []}) as app:
        url = f"http://127.0.0.1:{app.ports['webhook']}/nothing"
        statuses = [(await get(f"203.0.113.{n}")).status for n in range(3)]
        assert statuses == [404, 404, 429]  # untrusted peer: X-Forwarded-For is ignored


async def test_a_body_of_exactly_the_cap_is_read_and_one_byte_more_is_413(
    tmp_path: Path,
) -> None:
    async with edge_app(tmp_path, max_body_bytes=4096) as app:
        url = f"http://127.0.0.1:{app.ports['webhook']}{hook_path('generic-hook')}"

        async def chunks(size: int) -> AsyncGenerator[bytes, None]:
            yield b"x" * size

        async with aiohttp.ClientSession() as session:
            for size, declared in ((4096, True), (4096, False), (4097, True), (4097, False)):
                data = b"x" * size if declared else chunks(size)
                async with session.post(url, data=data) as response:
                    expected = 413 if size > 4096 else 200
                    assert response.status == expected, (size, declared, await response.text())
