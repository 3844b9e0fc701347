"""structlog set-up: JSON lines (the default, for clusters) or a console renderer (for humans)."""

from __future__ import annotations

import logging
import sys

import structlog

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
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer()
        if log_format == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS[log_level]),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stdout),
        cache_logger_on_first_use=False,
    )
