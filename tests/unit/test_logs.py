"""`receiver.logs`: the redaction step, and one line per record for our own and stdlib logs."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import sys

import pytest
import structlog

from receiver import logs

DIGEST = "1ef018a52483616dc22886e47a4cabdcbaa31acc4b3ccb1ece632f152db67bc6"


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        (f"POST /hook/{DIGEST} HTTP/1.1", DIGEST),
        ("path=/webhooks/dockerhub/tok-3141592", "tok-3141592"),
        ("X-Gitlab-Token: gl-abc123\x7f", "gl-abc123"),
        ('{"x-hub-signature-256": "sha256=deadbeefcafe"}', "deadbeefcafe"),
        ("signature sha256=0123456789abcdef given", "0123456789abcdef"),
        ("Authorization: Bearer eyJhbGciOi.x.y", "eyJhbGciOi"),
        ("Authorization: Basic dXNlcjpwYXNz", "dXNlcjpwYXNz"),
        ("clone https://user:hunter2@example.com/repo.git", "hunter2"),
        ("token=abc.def", "abc.def"),
        ("X-GITLAB-TOKEN=gl-upper", "gl-upper"),
        ("Authorization: Ba\u017fic dXNlcjpwYXNz", "dXNlcjpwYXNz"),  # (?i) folds U+017F to s
        ("api_KEY: k-123, éclair", "k-123"),
    ],
)
def test_redact_removes_the_secret(text: str, secret: str) -> None:
    assert secret not in logs.redact(text)
    assert logs.REDACTED in logs.redact(text)


def test_redact_keeps_what_is_not_secret() -> None:
    text = "route /hook/{digest} commit " + "a" * 40 + " repo https://github.com/org/fleet"
    assert logs.redact(text) == text


def test_redact_keeps_the_name_before_a_secret_word() -> None:
    assert logs.redact("X-Gitlab-Token: gl-abc") == "X-Gitlab-Token: " + logs.REDACTED


def test_a_list_is_redacted_item_by_item() -> None:
    event = logs.redact_event(
        None, "info", {"targets": ["GitRepository/ns/a", f"/hook/{DIGEST}"], "at": "12:00:01"}
    )
    assert event == {"targets": ["GitRepository/ns/a", "/hook/" + logs.REDACTED], "at": "12:00:01"}


@pytest.mark.parametrize("log_format", ["json", "console"])
def test_every_line_is_one_record_for_our_logs_aiohttp_and_asyncio(log_format: str) -> None:
    out = io.StringIO()
    logs.configure(log_format=log_format, log_level="info", output=out)
    try:
        try:
            raise OSError(24, "Too many open files")
        except OSError as exc:
            error = exc
        structlog.get_logger("test").error("ours", path=f"/hook/{DIGEST}", exc_info=error)
        logging.getLogger("asyncio").error("socket.accept() out of system resource", exc_info=error)
        logging.getLogger("aiohttp.server").error(
            "Error handling request: X-Gitlab-Token: gl-abc123\x7f", exc_info=error
        )
        loop = asyncio.new_event_loop()
        loop.call_exception_handler({"message": "Task exception", "exception": error})
        loop.close()
    finally:
        logs.configure(log_format="console", log_level="debug", output=sys.stdout)
    lines = out.getvalue().splitlines()
    assert len(lines) == 4
    assert DIGEST not in out.getvalue() and "gl-abc123" not in out.getvalue()
    assert all("Too many open files" in line for line in lines)
    if log_format == "json":
        assert [json.loads(line)["level"] for line in lines] == ["error"] * 4
