"""Signing keys for OIDC ID tokens (`gcr`, `generic-oidc`): fetch a JWKS, cache it, refresh it.

Edge module: reads a file or GETs a URL (aiohttp). The sources stay pure and get the keys as
`credentials.oidc.keys`; when a token names an unknown `kid` they raise `UnknownSigningKey`,
and `verify_with_refresh` fetches the key set again (at most once per `min_refresh_interval_s`,
so forged `kid`s cannot make us hammer the issuer) and verifies once more.
A failed fetch keeps the last good keys; with none at all it raises `JwksUnavailable`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import re
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import structlog

from receiver.errors import JwksUnavailable, UnknownSigningKey
from receiver.sources.base import Credentials, OidcSettings, RawDelivery, Source

log = structlog.get_logger(__name__)

# Google rotates its keys about daily and serves `Cache-Control: max-age` of a few hours.
DEFAULT_TTL_S = 3600.0
# The least time between two fetches triggered by unknown `kid`s.
DEFAULT_MIN_REFRESH_INTERVAL_S = 60.0
FETCH_TIMEOUT_S = 10.0
# Real key sets are a few KiB; a bigger answer is not a JWKS.
MAX_JWKS_BYTES = 1024 * 1024
_MAX_AGE = re.compile(r"(?:^|,)\s*max-age\s*=\s*(\d+)", re.IGNORECASE)

Keys = Mapping[str, Mapping[str, Any]]
_T = TypeVar("_T")


def parse_jwks(body: bytes) -> dict[str, dict[str, Any]]:
    """`{"keys": [...]}` -> kid -> JWK; keys without a `kid` are skipped. Raises ValueError."""
    document = json.loads(body)
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise ValueError("not a JWKS document: no 'keys' list")
    keys: dict[str, dict[str, Any]] = {}
    for jwk in document["keys"]:
        if isinstance(jwk, dict) and isinstance(jwk.get("kid"), str) and jwk["kid"]:
            keys[jwk["kid"]] = jwk
    return keys


def max_age_s(cache_control: str | None) -> float | None:
    """The `max-age` of a Cache-Control header, in seconds, or None."""
    match = _MAX_AGE.search(cache_control or "")
    return float(match.group(1)) if match else None


def is_url(location: str) -> bool:
    return location.startswith(("https://", "http://"))


class JwksCache:
    """One key set (a file path or an http(s) URL), cached for `ttl_s` or the server's max-age.

    `clock` is injected so tests move time instead of waiting; `session` is shared with the
    rest of the service (none is needed for a file).
    """

    def __init__(
        self,
        *,
        location: str,
        session: aiohttp.ClientSession | None = None,
        ttl_s: float = DEFAULT_TTL_S,
        min_refresh_interval_s: float = DEFAULT_MIN_REFRESH_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if is_url(location) and session is None:
            raise ValueError("a JWKS URL needs an aiohttp session")
        self._location = location.removeprefix("file://")
        self._session = session
        self._ttl_s = ttl_s
        self._min_refresh_interval_s = min_refresh_interval_s
        self._clock = clock
        self._keys: dict[str, dict[str, Any]] = {}
        self._expires_at: float | None = None
        self._last_attempt_at: float | None = None
        self._lock = asyncio.Lock()
        self.fetches = 0

    async def keys(self) -> Keys:
        """The cached keys, fetched first when there are none or they have expired."""
        if self._expires_at is None or self._clock() >= self._expires_at:
            async with self._lock:
                if self._expires_at is None or self._clock() >= self._expires_at:
                    await self._fetch(reason="expired" if self._keys else "first use")
        return self._keys

    async def refresh_for(self, kid: str) -> bool:
        """Fetch again for an unknown `kid`, unless a fetch happened too recently; True when
        `kid` is known afterwards."""
        async with self._lock:
            if kid in self._keys:
                return True  # another delivery's refresh found it meanwhile
            last = self._last_attempt_at
            if last is not None and self._clock() - last < self._min_refresh_interval_s:
                return False
            await self._fetch(reason="unknown kid")
        return kid in self._keys

    async def _fetch(self, *, reason: str) -> None:
        self._last_attempt_at = self._clock()
        self.fetches += 1
        try:
            body, max_age = await self._read()
            keys = parse_jwks(body)
        except (OSError, aiohttp.ClientError, TimeoutError, ValueError) as exc:
            log.warning(
                "jwks_fetch_failed",
                location=self._location,
                reason=reason,
                error=exc.__class__.__name__,
                keeping=len(self._keys),
            )
            if not self._keys:
                raise JwksUnavailable(
                    "OIDC signing keys cannot be loaded right now: retry later"
                ) from exc
            # Keep the stale keys; try again no sooner than the refresh interval.
            self._expires_at = self._clock() + self._min_refresh_interval_s
            return
        self._keys = keys
        ttl_s = self._ttl_s if max_age is None else min(max_age, self._ttl_s)
        self._expires_at = self._clock() + ttl_s
        log.info("jwks_loaded", location=self._location, reason=reason, keys=len(keys))

    async def _read(self) -> tuple[bytes, float | None]:
        if not is_url(self._location):
            raw = await asyncio.to_thread(Path(self._location).read_bytes)
            if len(raw) > MAX_JWKS_BYTES:
                raise ValueError("JWKS file is too large")
            return raw, None
        assert self._session is not None
        timeout = aiohttp.ClientTimeout(total=FETCH_TIMEOUT_S)
        async with self._session.get(self._location, timeout=timeout) as response:
            if response.status != 200:
                raise ValueError(f"JWKS answered HTTP {response.status}")
            raw = await response.content.read(MAX_JWKS_BYTES + 1)
            if len(raw) > MAX_JWKS_BYTES:
                raise ValueError("JWKS answer is too large")
            return raw, max_age_s(response.headers.get("Cache-Control"))


def with_keys(credentials: Credentials, keys: Keys) -> Credentials:
    oidc = credentials.oidc or OidcSettings(keys={})
    return dataclasses.replace(credentials, oidc=dataclasses.replace(oidc, keys=keys))


async def verify_with_refresh(
    *, source: Source, delivery: RawDelivery, credentials: Credentials, cache: JwksCache
) -> None:
    """`source.verify` with the cache's keys; on an unknown `kid`, refresh once and retry."""
    await call_with_refresh(
        lambda keys: source.verify(delivery, with_keys(credentials, keys)), cache=cache
    )


async def call_with_refresh(check: Callable[[Keys], _T], *, cache: JwksCache) -> _T:
    """`check(keys)` with the cache's keys; on an unknown `kid`, refresh once and retry."""
    try:
        return check(await cache.keys())
    except UnknownSigningKey as exc:
        if not await cache.refresh_for(exc.kid):
            raise
        return check(await cache.keys())


class IssuerKeys:
    """One `JwksCache` per OIDC issuer (generic-oidc), its `jwks_uri` found by discovery on
    first use and kept; a failed discovery is tried again on the next delivery."""

    def __init__(self, *, session: aiohttp.ClientSession) -> None:
        self._session = session
        self._caches: dict[str, JwksCache] = {}
        self._lock = asyncio.Lock()

    async def cache_for(self, issuer: str) -> JwksCache:
        """Call only for a configured issuer: the caches are never evicted."""
        cache = self._caches.get(issuer)
        if cache is not None:
            return cache
        async with self._lock:
            if issuer not in self._caches:
                jwks_uri = await discover_jwks_uri(issuer, session=self._session)
                self._caches[issuer] = JwksCache(location=jwks_uri, session=self._session)
                log.info("oidc_issuer_discovered", issuer=issuer, jwks_uri=jwks_uri)
        return self._caches[issuer]


async def discover_jwks_uri(issuer: str, *, session: aiohttp.ClientSession) -> str:
    """`jwks_uri` from the issuer's `/.well-known/openid-configuration` (generic-oidc setup).

    The document's `issuer` must equal `issuer`, as OpenID Connect Discovery requires.
    """
    url = issuer.rstrip("/") + "/.well-known/openid-configuration"
    timeout = aiohttp.ClientTimeout(total=FETCH_TIMEOUT_S)
    try:
        async with session.get(url, timeout=timeout) as response:
            if response.status != 200:
                raise JwksUnavailable(f"OIDC discovery for {issuer} answered {response.status}")
            document = json.loads(await response.content.read(MAX_JWKS_BYTES))
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        raise JwksUnavailable(f"OIDC discovery for {issuer} failed") from exc
    if not isinstance(document, dict) or document.get("issuer") != issuer:
        raise JwksUnavailable(f"OIDC discovery document does not name issuer {issuer}")
    jwks_uri = document.get("jwks_uri")
    if not isinstance(jwks_uri, str) or not is_url(jwks_uri):
        raise JwksUnavailable(f"OIDC discovery for {issuer} names no jwks_uri")
    return jwks_uri
