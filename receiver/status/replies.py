"""Reading a forge's reply: headers, rate-limit hints and the error message, shared by forges.

Pure: no I/O, no clock (`now_s` is passed in). The forge modules decide what a status code
means; this only reads values the three APIs spell the same way (`Retry-After`, epoch
`*RateLimit-Reset`, a JSON `message`).
"""

from __future__ import annotations

import email.utils
import json
from collections.abc import Mapping
from typing import Final

from receiver.errors import ForgeRateLimited, ForgeRejected, ForgeUnavailable
from receiver.status.model import trim

DEFAULT_RATE_LIMIT_WAIT_S: Final = 60.0
"""GitHub's advice when a limit answer gives no header: wait at least a minute."""
MIN_WAIT_S: Final = 1.0
MAX_MESSAGE_CHARS: Final = 200


def lower_keys(headers: Mapping[str, str]) -> dict[str, str]:
    return {key.lower(): value for key, value in headers.items()}


def retry_after_s(headers: Mapping[str, str], *, now_s: float) -> float | None:
    """`Retry-After` as seconds (delta or HTTP date), None when absent or unreadable."""
    value = headers.get("retry-after", "").strip()
    if not value:
        return None
    try:
        return max(float(value), MIN_WAIT_S)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - now_s, MIN_WAIT_S)


def reset_in_s(headers: Mapping[str, str], name: str, *, now_s: float) -> float | None:
    """Seconds until the epoch time in header `name` (`x-ratelimit-reset`, `ratelimit-reset`)."""
    try:
        reset = float(headers[name])
    except (KeyError, ValueError):
        return None
    return max(reset - now_s, MIN_WAIT_S)


def message(body: bytes) -> str:
    """The forge's own error text (`message`; GitLab's dict form flattened), trimmed; no raise."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return trim(body[:MAX_MESSAGE_CHARS].decode("utf-8", "replace"), limit=MAX_MESSAGE_CHARS)
    text = data.get("message", "") if isinstance(data, dict) else ""
    if isinstance(text, dict):
        text = "; ".join(f"{key}: {value}" for key, value in text.items())
    return trim(str(text), limit=MAX_MESSAGE_CHARS)


def raise_for_common(*, forge: str, status: int, body: bytes) -> None:
    """What every forge agrees on once its own cases are handled: 5xx retry, 4xx give up."""
    if status >= 500:
        raise ForgeUnavailable(f"{forge} answered {status}: {message(body)}")
    if status >= 400:
        raise ForgeRejected(f"{forge} refused the status ({status}): {message(body)}")
    if status < 200 or status >= 300:
        raise ForgeUnavailable(f"{forge} answered an unexpected {status}")


def rate_limited(*, forge: str, wait_s: float) -> ForgeRateLimited:
    return ForgeRateLimited(f"{forge} rate limit: retry in {wait_s:.0f}s", retry_after_s=wait_s)
