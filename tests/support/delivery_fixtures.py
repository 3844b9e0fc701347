"""Loads a recorded delivery: `tests/fixtures/<source>/<event>.json` plus its `.headers` file.

A `.headers` file holds one `Name: value` per line (blank lines and `#` comments skipped);
names are lower-cased here, as `http/limits.py` does for real requests.
"""

from __future__ import annotations

from pathlib import Path

from receiver.sources.base import RawDelivery

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


def read_headers(path: Path) -> dict[str, str]:
    headers: dict[str, str] = {}
    if not path.exists():
        return headers
    for line in path.read_text().splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        name, sep, value = line.partition(":")
        if not sep:
            raise ValueError(f"{path}: header line without a colon: {line!r}")
        headers[name.strip().lower()] = value.strip()
    return headers


def body(source: str, event: str) -> bytes:
    return (FIXTURES / source / f"{event}.json").read_bytes()


def load(source: str, event: str, **extra_headers: str) -> RawDelivery:
    """The fixture as the edge would hand it to a source; `extra_headers` override the file."""
    headers = read_headers(FIXTURES / source / f"{event}.headers")
    headers.update({name.replace("_", "-").lower(): value for name, value in extra_headers.items()})
    return RawDelivery(headers=headers, body=body(source, event))
