"""Property-based requests through real sockets (hypothesis): random methods, paths, header
sets (duplicated, malformed, compressed, with real tokens in them) and bodies against every
receiver type and the discovery routes. Never a 5xx, never a traceback, never a secret in an
answer or a log line. Bounded: a fixed example count, short limits, loopback only."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import socket
import threading
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.support.edge import RECEIVERS, SECRETS, LogLines, edge_app, hook_path, json_logs

PATHS = [hook_path(name) for name in RECEIVERS] + [
    "/webhooks/github",
    "/webhooks/dockerhub/" + SECRETS[0],
    "/hook/",
    "/hook/" + "0" * 64,
    "/",
    "/metrics",
    "/hook/%00",
    "//hook//x",
]
HEADER_NAMES = [
    "X-GitHub-Event",
    "X-Hub-Signature-256",
    "X-Hub-Signature",
    "X-Gitlab-Token",
    "X-Gitlab-Event",
    "X-Gitea-Signature",
    "X-Signature",
    "Authorization",
    "Content-Type",
    "Content-Encoding",
    "Content-Length",
    "Transfer-Encoding",
    "X-Forwarded-For",
    "Expect",
]
# Header values: printable text, the real tokens (as a sender would put them), signature-shaped
# strings and a few bytes HTTP forbids (DEL, NUL, non-ASCII).
VALUES = st.one_of(
    st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=60),
    st.sampled_from(SECRETS),
    st.sampled_from(SECRETS).map(lambda secret: f"sha256={secret}"),
    st.sampled_from(SECRETS).map(lambda secret: f"{secret}=abc"),
    st.sampled_from(["gzip", "deflate", "br", "identity", "chunked", "100-continue", "push"]),
    st.text(st.sampled_from("ab\x7f\x00é="), max_size=8),
)
HEADERS = st.lists(
    st.tuples(
        st.one_of(
            st.sampled_from(HEADER_NAMES),
            st.text(st.sampled_from("XYab-_:"), min_size=1, max_size=8),
        ),
        VALUES,
    ),
    max_size=8,
)
HUGE_INTEGER = b'{"n": 1' + b"9" * 5000 + b"}"
NESTED = b"[" * 5000
BODIES = st.one_of(
    st.binary(max_size=512),
    st.sampled_from(
        [
            b'{"ref": "refs/heads/main", "after": "' + b"1" * 40 + b'"}',
            HUGE_INTEGER,
            NESTED,
            b'{"object_kind": "push", "ref": 7}',
            b"payload=%7B%7D",
        ]
    ),
)


def credentials(name: str, body: bytes) -> list[tuple[str, str]]:
    """The headers that make a delivery to receiver `name` authentic, so that random bodies
    reach the parsers (the part of the code that sees what an attacker controls most)."""
    type_name, token = RECEIVERS[name]
    digest = hmac.new(token.encode(), body, hashlib.sha256).hexdigest()
    basic = base64.b64encode(f"user:{token}".encode()).decode()
    return {
        "github": [("X-GitHub-Event", "push"), ("X-Hub-Signature-256", f"sha256={digest}")],
        "gitlab": [("X-Gitlab-Event", "Push Hook"), ("X-Gitlab-Token", token)],
        "gitea": [("X-Gitea-Event", "push"), ("X-Gitea-Signature", digest)],
        "generic-hmac": [("X-Signature", f"sha256={digest}")],
        "bitbucket": [("X-Event-Key", "repo:push"), ("X-Hub-Signature", f"sha256={digest}")],
        "harbor": [("Authorization", token)],
        "azure-devops": [("Authorization", f"Basic {basic}")],
    }.get(type_name, [])


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, LogLines]]:
    """The real App on its own event loop in a thread, so hypothesis can drive it blocking."""
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    found: dict[str, int] = {}
    stop: list[asyncio.Event] = []

    async def main() -> None:
        stop.append(asyncio.Event())
        async with edge_app(
            tmp_path_factory.mktemp("property"),
            max_body_bytes=8192,
            limits={"header_timeout_s": 1, "body_timeout_s": 1, "client_rate_per_s": 0},
        ) as app:
            found["port"] = app.ports["webhook"]
            ready.set()
            await stop[0].wait()

    with json_logs() as lines:

        def run() -> None:
            asyncio.set_event_loop(loop)
            loop.run_until_complete(main())
            pending = asyncio.all_tasks(loop)
            for task in pending:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        assert ready.wait(60)
        try:
            yield found["port"], lines
        finally:
            loop.call_soon_threadsafe(stop[0].set)
            thread.join(30)
            loop.close()
    text = lines.stream.getvalue()
    assert "Traceback" not in text and "unhandled_error" not in text
    for secret in SECRETS:
        assert secret not in text


def exchange(port: int, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(request)
        chunks = []
        while True:
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                break
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@example(
    method="POST", target="gitlab-hook", path="", headers=[], body=HUGE_INTEGER, declare="exact"
)
@example(method="POST", target="quay-hook", path="", headers=[], body=HUGE_INTEGER, declare="exact")
@example(
    method="POST", target="azure-devops-hook", path="", headers=[], body=NESTED, declare="exact"
)
@example(
    method="POST",
    target="github-hook",
    path="",
    headers=[("Content-Encoding", "gzip")],
    body=b"\x1f\x8b",
    declare="exact",
)
@given(
    method=st.one_of(
        st.sampled_from(["POST", "PUT", "GET", "HEAD", "DELETE", "OPTIONS"]),
        st.text(st.sampled_from("ABCXYZ"), min_size=1, max_size=6),
    ),
    target=st.one_of(st.sampled_from(sorted(RECEIVERS)), st.none()),
    path=st.one_of(st.sampled_from(PATHS), st.text(st.sampled_from("/abc%?&=#h"), max_size=30)),
    headers=HEADERS,
    body=BODIES,
    declare=st.sampled_from(["exact", "none", "short"]),
)
def test_no_request_gets_a_5xx_a_traceback_or_a_secret(
    served: tuple[int, LogLines],
    method: str,
    target: str | None,
    path: str,
    headers: list[tuple[str, str]],
    body: bytes,
    declare: str,
) -> None:
    port, _lines = served
    if target is not None:  # an authentic delivery to a receiver, with extra random headers
        path = hook_path(target)
        headers = credentials(target, body) + headers
    lines = [f"{method} {path or '/'} HTTP/1.1", "Host: 127.0.0.1", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in headers]
    if declare == "exact":
        lines.append(f"Content-Length: {len(body)}")
    elif declare == "short":  # declares more than it sends: the body time limit answers
        lines.append(f"Content-Length: {len(body) + 10}")
    request = ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8", "surrogateescape") + body
    answer = exchange(port, request)
    if not answer:
        return  # closed without an answer (e.g. a body that never ends and no length)
    status_line = answer.split(b"\r\n", 1)[0]
    assert status_line.startswith(b"HTTP/1."), answer[:200]
    status = int(status_line.split()[1])
    assert status < 500, answer[:500]
    assert b"Traceback" not in answer
    for secret in SECRETS:
        assert secret.encode() not in answer, answer[:500]


def test_the_property_test_reaches_the_app(served: tuple[int, LogLines]) -> None:
    port, _ = served
    body = b'{"x": 1}'
    answer = exchange(
        port,
        f"POST {hook_path('generic-hook')} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body,
    )
    assert answer.startswith(b"HTTP/1.1 200 ")
