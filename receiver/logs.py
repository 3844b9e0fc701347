"""structlog set-up: JSON lines (the default, for clusters) or a console renderer (for humans).

JSON lines are rendered by orjson straight to stdout's bytes when orjson is installed (a
runtime dependency; about four times faster than the standard library), else by `json`.
Loggers are cached on first use: `configure` runs once, before the service logs anything.
"""

from __future__ import annotations

import logging
import sys

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


# Until `configure` runs, structlog's defaults print every level.
_debug_enabled = True


def debug_enabled() -> bool:
    """Whether debug lines are printed: lets hot paths skip building them."""
    return _debug_enabled


def configure(*, log_format: str, log_level: str) -> None:
    global _debug_enabled
    _debug_enabled = _LEVELS[log_level] <= logging.DEBUG
    renderer: structlog.typing.Processor
    factory: structlog.typing.WrappedLogger
    if log_format != "json":
        renderer = structlog.dev.ConsoleRenderer(colors=False)
        factory = structlog.PrintLoggerFactory(file=sys.stdout)
    elif orjson is not None:
        renderer = structlog.processors.JSONRenderer(serializer=orjson.dumps)
        factory = structlog.BytesLoggerFactory(file=sys.stdout.buffer)
    else:  # pragma: no cover - platforms without an orjson wheel
        renderer = structlog.processors.JSONRenderer()
        factory = structlog.PrintLoggerFactory(file=sys.stdout)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS[log_level]),
        logger_factory=factory,
        cache_logger_on_first_use=True,
    )
