"""The seven defects found by probing the service as an attacker (issue 17), each driven through
real sockets against the real server (dry-run inventory: no cluster needed)."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import gzip
import hashlib
import hmac
import json
import socket
import subprocess
import sys
import tracemalloc
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest
from prometheus_client import generate_latest

from receiver.app import App
from receiver.pipeline import Pipeline
from tests.support.edge import (
    RECEIVERS,
    SECRETS,
    LogLines,
    edge_app,
    hook_path,
    json_logs,
    raw_exchange,
)

GITHUB_TOKEN = RECEIVERS["github-hook"][1]
GITLAB_TOKEN = RECEIVERS["gitlab-hook"][1]
PUSH = json.dumps(
    {
        "ref": "refs/heads/main",
        "before": "1" * 40,
        "after": "2" * 40,
        "repository": {"clone_url": "https://github.com/org/fleet.git"},
    }
).encode()


@pytest.fixture
def log_lines() -> Iterator[LogLines]:
    with json_logs() as lines:
        yield lines


@pytest.fixture
async def app(tmp_path: Path, log_lines: LogLines) -> AsyncIterator[App]:
    async with edge_app(
        tmp_path,
        limits={"header_timeout_s": 0.5, "idle_timeout_s": 0.5, "body_timeout_s": 30},
    ) as running:
        yield running


def signature(body: bytes, secret: str = GITHUB_TOKEN) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def assert_no_secret(texts: list[str]) -> None:
    for text in texts:
        for secret in SECRETS:
            assert secret not in text


async def test_1_aborted_uploads_leave_no_memory_behind(app: App, log_lines: LogLines) -> None:
    """Partial bodies of clients that went away are freed at once, not at the next full
    garbage collection (the collector is off here, as it may be for minutes under load)."""
    size = 2 * 1024 * 1024
    head = (
        f"POST {hook_path('github-hook')} HTTP/1.1\r\nHost: x\r\nContent-Length: {size}\r\n\r\n"
    ).encode()
    gc.collect()
    gc.disable()
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        for _ in range(8):
            _reader, writer = await asyncio.open_connection("127.0.0.1", app.ports["webhook"])
            writer.write(head + b"x" * (size - 1))
            await writer.drain()
            writer.transport.abort()
        await log_lines.wait_for("delivery", count=8)
        await asyncio.sleep(0.2)
        after, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        gc.enable()
    assert after - before < 3 * 1024 * 1024, f"{(after - before) / 1e6:.1f} MB kept"
    assert {e["outcome"] for e in log_lines.named("delivery")} == {"malformed"}


async def test_2_headers_a_byte_at_a_time_are_cut_off(app: App) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", app.ports["webhook"])

    async def trickle() -> None:
        with contextlib.suppress(ConnectionError):
            for byte in b"POST /hook/x HTTP/1.1\r\nHost: x\r\nX-Padding: " + b"a" * 100:
                writer.write(bytes([byte]))
                await writer.drain()
                await asyncio.sleep(0.05)

    sender = asyncio.create_task(trickle())
    started = asyncio.get_running_loop().time()
    try:
        answer = await asyncio.wait_for(reader.read(), 3)
    finally:
        sender.cancel()
        writer.close()
    assert answer.startswith(b"HTTP/1.1 408 ")
    assert asyncio.get_running_loop().time() - started < 2
    assert 'connections_closed_total{reason="header_timeout"} 1.0' in await _metrics(app)


async def test_2_idle_connections_are_closed(app: App) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", app.ports["webhook"])
    assert await asyncio.wait_for(reader.read(), 2) == b""
    writer.close()
    assert 'connections_closed_total{reason="idle_timeout"} 1.0' in await _metrics(app)


async def test_3_a_huge_json_integer_is_a_400_not_a_500(app: App, log_lines: LogLines) -> None:
    body = b'{"object_kind": "push", "ref": "refs/heads/main", "n": 1' + b"0" * 5000 + b"}"
    status, answer = await _post(
        app,
        hook_path("gitlab-hook"),
        body,
        {"X-Gitlab-Token": GITLAB_TOKEN, "X-Gitlab-Event": "Push Hook"},
    )
    assert status == 400, answer
    assert not log_lines.named("unhandled_error")


async def test_4_a_token_in_a_bad_header_line_reaches_neither_log_nor_answer(
    app: App, log_lines: LogLines
) -> None:
    answer = await raw_exchange(
        app.ports["webhook"],
        f"POST {hook_path('gitlab-hook')} HTTP/1.1\r\nHost: x\r\n"
        f"X-Gitlab-Token: {GITLAB_TOKEN}\x7f\r\nContent-Length: 0\r\n\r\n".encode(),
    )
    assert answer.split(b"\r\n")[0].endswith(b" 400 Bad Request")
    await log_lines.wait_for("http_request_refused")
    assert_no_secret([answer.decode(errors="replace"), *log_lines.lines])
    assert all(json.loads(line) for line in log_lines.lines)  # one JSON object per line


async def test_4_the_signature_is_not_echoed_as_an_algorithm(app: App) -> None:
    digest = signature(PUSH).removeprefix("sha256=")
    status, answer = await _post(
        app,
        hook_path("github-hook"),
        PUSH,
        {"X-GitHub-Event": "push", "X-Hub-Signature-256": f"{digest}=abc"},
    )
    assert status == 401
    assert digest not in json.dumps(answer)


async def test_4_an_unhandled_error_does_not_log_the_secret_path(
    app: App, log_lines: LogLines, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def crash(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("planted bug")

    monkeypatch.setattr(Pipeline, "handle_hook", crash)
    path = hook_path("github-hook")
    status, _ = await _post(app, path, PUSH, {})
    assert status == 500
    await log_lines.wait_for("unhandled_error")
    assert path.removeprefix("/hook/") not in log_lines.stream.getvalue()
    (line,) = log_lines.named("unhandled_error")
    assert line["route"] == "/hook/{digest}"


async def test_5_a_compressed_body_is_refused_not_half_verified(app: App) -> None:
    raw = gzip.compress(PUSH)
    status, answer = await _post(
        app,
        hook_path("github-hook"),
        raw,
        {
            "X-GitHub-Event": "push",
            "X-Hub-Signature-256": signature(raw),
            "Content-Encoding": "gzip",
        },
    )
    assert status == 415
    assert "uncompressed" in answer["error"]


async def test_6_an_upload_cut_by_shutdown_is_not_a_500(
    tmp_path: Path, log_lines: LogLines
) -> None:
    async with edge_app(tmp_path) as app:
        _reader, writer = await asyncio.open_connection("127.0.0.1", app.ports["webhook"])
        writer.write(
            f"POST {hook_path('github-hook')} HTTP/1.1\r\nHost: x\r\n"
            "Content-Length: 1000\r\n\r\n{".encode()
        )
        await writer.drain()
        await asyncio.sleep(0.2)
    writer.close()
    (delivery,) = log_lines.named("delivery")
    assert delivery["outcome"] == "cancelled" and delivery["status"] is None
    counted = generate_latest(app.metrics.registry).decode()
    assert 'outcome="cancelled",source="unknown"} 1.0' in counted
    assert 'outcome="error"' not in counted


def test_7_a_listen_port_in_use_is_one_line_and_status_2(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "receiver.cli",
                "serve",
                "--inventory",
                str(Path(__file__).resolve().parents[3] / "config" / "examples"),
                "--listen",
                f"127.0.0.1:{port}",
                "--health-listen",
                "127.0.0.1:0",
                "--metrics-listen",
                "127.0.0.1:0",
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    (line,) = done.stderr.strip().splitlines()
    assert f"cannot listen on 127.0.0.1:{port}" in line


async def _post(
    app: App, path: str, body: bytes, headers: dict[str, str]
) -> tuple[int, dict[str, object]]:
    url = f"http://127.0.0.1:{app.ports['webhook']}{path}"
    async with (
        aiohttp.ClientSession(auto_decompress=False) as session,
        session.post(url, data=body, headers=headers) as response,
    ):
        return response.status, await response.json(content_type=None)


async def _metrics(app: App) -> str:
    url = f"http://127.0.0.1:{app.ports['metrics']}/metrics"
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return await response.text()


# -- planted bugs the suite once let through (issue 17, point 7) ----------------------------


async def test_a_delivery_naming_no_event_is_filtered_by_spec_events(
    app: App, log_lines: LogLines
) -> None:
    path = hook_path("github-hook")
    status, answer = await _post(app, path, PUSH, {"X-Hub-Signature-256": signature(PUSH)})
    assert status == 200 and answer["status"] == "ignored", answer
    status, answer = await _post(
        app, path, PUSH, {"X-GitHub-Event": "push", "X-Hub-Signature-256": signature(PUSH)}
    )
    assert status == 200 and answer["status"] == "accepted", answer
    assert [e["outcome"] for e in log_lines.named("delivery")] == ["filtered", "accepted"]
