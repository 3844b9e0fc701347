"""Logging: every line one JSON object (the default, for clusters) or one console line.

structlog renders our own lines; the standard library's loggers (aiohttp's, asyncio's) are
routed through the same processors, so their errors are single lines too, tracebacks included
(JSON escapes the line breaks; the console format folds them). Before anything is rendered,
`redact` removes what can be a credential: webhook paths (`/hook/<digest>`,
`/webhooks/<endpoint>/<token>`), signature values (`sha256=<hex>`), token, signature and
authorization headers or fields, bearer/basic credentials and passwords in URLs. The HTTP edge
runs the same `redact` over the messages it answers with.
The service's JSON lines are rendered by orjson straight to stdout's bytes when orjson is
installed (about four times faster than the standard library), and its loggers are cached on
first use (`configure` runs once, before it logs anything); with an explicit `output` (tests),
neither, so `configure` may run again.
"""

from __future__ import annotations

import functools
import logging
import re
import sys
from collections.abc import Mapping
from typing import Any, TextIO

import structlog

try:
    import orjson
except ImportError:  # pragma: no cover - platforms without an orjson wheel
    orjson = None  # type: ignore[assignment]

_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}

REDACTED = "<redacted>"
_SECRET_WORDS = r"(?:token|signature|secret|password|passwd|authorization|api[-_]?key|credential)"
# A field whose name says it holds a secret has its whole value replaced.
_SECRET_KEY = re.compile(rf"(?i){_SECRET_WORDS}")
_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"(?i)\b(bearer|basic)\s+[\w.~+/=-]+"), r"\1 " + REDACTED),
    (re.compile(r"/hook/(?!\{)[^\s\"'?#,;)}\]]+"), "/hook/" + REDACTED),
    (re.compile(r"(/webhooks/[\w.-]+)/(?!\{)[^\s\"'?#,;)}\]]+"), r"\1/" + REDACTED),
    # `X-Gitlab-Token: value`, `"x-hub-signature-256": "sha256=..."`, `token=value`. The match
    # starts at the secret word (what precedes it in the name stays as it is): a leading
    # `[\w-]*` would make every `[\w-]` run cost its length squared.
    (
        re.compile(rf"(?i)({_SECRET_WORDS}[\w-]*[\"']?\s*[:=]\s*[\"']?)([^\s\"',;}}]+)"),
        r"\1" + REDACTED,
    ),
    (re.compile(r"(?i)\b(sha1|sha256|sha512|md5)=[0-9a-f]{6,}"), r"\1=" + REDACTED),
    (re.compile(r"://[^/\s@:]+:[^/\s@]+@"), "://" + REDACTED + "@"),
)
# What the patterns above need somewhere in the text (same `(?i)`): the field pattern a word of
# `_SECRET_WORDS` (`passw`, `key`: stems of its words), each of the others one of the first six.
# A text without any (most values of a line: names, ids, targets, times) is returned as it is.
# ASCII text is checked with substring tests (much faster than the regex); other text with
# `_CLUES`, whose `(?i)` also matches the long s (U+017F) for `s` as the patterns do.
_ASCII_CLUES = (
    *("bearer", "basic", "/hook/", "/webhooks/", "=", "://"),
    *("token", "signature", "secret", "passw", "authorization", "key", "credential"),
)
_CLUES = re.compile("(?i)" + "|".join(re.escape(clue) for clue in _ASCII_CLUES))


def _has_clue(text: str) -> bool:
    if text.isascii():
        lowered = text.lower()
        return any(clue in lowered for clue in _ASCII_CLUES)
    return _CLUES.search(text) is not None


# Until `configure` runs, structlog's defaults print every level.
_debug_enabled = True
_handler: logging.Handler | None = None


def debug_enabled() -> bool:
    """Whether debug lines are printed: lets hot paths skip building them."""
    return _debug_enabled


def redact(text: str) -> str:
    """`text` with every credential-shaped part replaced by `<redacted>` (see module doc)."""
    if not _has_clue(text):
        return text
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


@functools.lru_cache(maxsize=1024)
def _secret_key(key: str) -> bool:
    """Whether a field named `key` holds a secret (cached: a line's keys are few and repeat)."""
    return _SECRET_KEY.search(key) is not None


def _redact_value(key: str, value: Any) -> Any:
    if _secret_key(key) and value is not None and not isinstance(value, bool | int):
        return REDACTED
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, bytes):
        return redact(value.decode("utf-8", "replace"))
    if isinstance(value, Mapping):
        return {str(k): _redact_value(str(k), v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = list(value)
        # A clue cannot span the line break: one search tells whether any string item has one.
        if all(isinstance(item, str) for item in items) and not _has_clue("\n".join(items)):
            return items
        return [_redact_value("", item) for item in items]
    return value


def redact_event(
    _logger: Any, _method: str, event_dict: structlog.typing.EventDict
) -> structlog.typing.EventDict:
    """structlog processor: `redact` over every value (after exceptions are formatted)."""
    return {
        key: value if key in ("level", "timestamp") else _redact_value(key, value)
        for key, value in event_dict.items()
    }


def _fold_lines(
    _logger: Any, _method: str, event_dict: structlog.typing.EventDict
) -> structlog.typing.EventDict:
    """Console format: multi-line values (tracebacks) folded onto the one line; the renderer
    would print an `exception` on lines of its own, so it travels as `traceback`."""
    if "exception" in event_dict:
        event_dict["traceback"] = event_dict.pop("exception")
    return {
        key: value.replace("\n", " | ") if isinstance(value, str) else value
        for key, value in event_dict.items()
    }


def configure(*, log_format: str, log_level: str, output: TextIO | None = None) -> None:
    """Set up structlog and the standard library's root logger; idempotent."""
    global _debug_enabled, _handler
    _debug_enabled = _LEVELS[log_level] <= logging.DEBUG
    stream = output or sys.stdout
    shared: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    tail: list[structlog.typing.Processor] = [structlog.processors.format_exc_info, redact_event]
    # The standard library's records go through a text handler: always a `str` renderer.
    text_renderer: structlog.typing.Processor
    renderer: structlog.typing.Processor
    factory: structlog.typing.WrappedLogger
    if log_format != "json":
        text_renderer = renderer = structlog.dev.ConsoleRenderer(colors=False)
        tail.append(_fold_lines)
        factory = structlog.PrintLoggerFactory(file=stream)
    else:
        text_renderer = renderer = structlog.processors.JSONRenderer()
        factory = structlog.PrintLoggerFactory(file=stream)
        if orjson is not None and output is None:
            renderer = structlog.processors.JSONRenderer(serializer=orjson.dumps)
            factory = structlog.BytesLoggerFactory(file=sys.stdout.buffer)
    structlog.configure(
        processors=[*shared, *tail, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS[log_level]),
        logger_factory=factory,
        cache_logger_on_first_use=output is None,
    )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[
                *shared,
                structlog.stdlib.add_logger_name,
                structlog.stdlib.ExtraAdder(),
            ],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                *tail,
                text_renderer,
            ],
        )
    )
    root = logging.getLogger()
    if _handler is not None:
        root.removeHandler(_handler)
    root.addHandler(handler)
    root.setLevel(max(_LEVELS[log_level], logging.INFO))
    _handler = handler
    # aiohttp's access log would repeat every request (and its secret path): one line per
    # delivery comes from the edge instead.
    logging.getLogger("aiohttp.access").disabled = True
