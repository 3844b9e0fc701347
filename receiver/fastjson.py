"""JSON encoding and decoding through orjson when it is installed, else the standard library.

orjson (a runtime dependency with wheels for the usual platforms) parses and writes several
times faster than `json`; this fallback keeps the service correct where it has no wheel.
Pure: no I/O.
"""

from __future__ import annotations

import json
from typing import Any

try:
    import orjson
except ImportError:  # pragma: no cover - platforms without an orjson wheel
    orjson = None  # type: ignore[assignment]


def loads(data: bytes | str) -> Any:
    """Decode one JSON document; raises ValueError on malformed input."""
    if orjson is not None:
        return orjson.loads(data)
    return json.loads(data)  # pragma: no cover - platforms without an orjson wheel


def dumps(value: Any) -> bytes:
    """Encode `value` as compact UTF-8 JSON."""
    if orjson is not None:
        return orjson.dumps(value)
    return json.dumps(value, separators=(",", ":")).encode()  # pragma: no cover
