"""Verification of RS256 OIDC ID tokens (JWTs), for the `gcr` and `generic-oidc` sources.

Pure: no I/O, no clock reads. The signing keys (a JWKS as `kid` -> JWK) and the current time
come in as arguments; fetching and caching the keys is `receiver/oidc_keys.py`'s job. An unknown
`kid` raises `UnknownSigningKey` so that edge can refresh the keys once and retry.
Only RS256 is accepted: `none`, HMAC and every other algorithm are refused before any key use.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from receiver.errors import AuthenticationFailed, UnknownSigningKey
from receiver.sources.base import RawDelivery

ALGORITHM = "RS256"
BEARER_PREFIX = "bearer "
# Google ID tokens are about 1 KiB; anything much bigger is not a token we issue checks for.
MAX_TOKEN_CHARS = 16 * 1024
# Keys below this size are refused: NIST and Google both stopped using them.
MIN_RSA_BITS = 2048
# Tolerated clock difference between the issuer and us, for exp, nbf and iat.
DEFAULT_LEEWAY_S = 60.0
# Claim values quoted back in error messages are cut to this length.
_QUOTE_CHARS = 80


@dataclass(frozen=True, slots=True)
class Expectations:
    """What a valid token must say. `audience` None skips the `aud` check (Flux gcr, no key)."""

    issuers: tuple[str, ...]
    audience: str | None
    now_s: float
    leeway_s: float = DEFAULT_LEEWAY_S


def _quote(value: object) -> str:
    text = repr(value)
    return text if len(text) <= _QUOTE_CHARS else text[: _QUOTE_CHARS - 3] + "..."


def bearer_token(delivery: RawDelivery, *, hint: str) -> str:
    """The token of `Authorization: Bearer <token>`, or `AuthenticationFailed`."""
    value = delivery.header("authorization")
    if not value:
        raise AuthenticationFailed(f"Authorization header missing: {hint}")
    if value[: len(BEARER_PREFIX)].lower() != BEARER_PREFIX:
        raise AuthenticationFailed("Authorization header is not of the form 'Bearer <ID token>'")
    token = value[len(BEARER_PREFIX) :].strip()
    if not token:
        raise AuthenticationFailed("Authorization header carries an empty bearer token")
    return token


def _b64url(segment: str, *, what: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    except (binascii.Error, ValueError):
        raise AuthenticationFailed(f"ID token {what} is not base64url") from None


def _json_object(raw: bytes, *, what: str) -> dict[str, Any]:
    try:
        value = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise AuthenticationFailed(f"ID token {what} is not JSON") from None
    if not isinstance(value, dict):
        raise AuthenticationFailed(f"ID token {what} is not a JSON object")
    return value


def _public_key(jwk: Mapping[str, Any], *, kid: str) -> rsa.RSAPublicKey:
    if jwk.get("kty") != "RSA":
        raise AuthenticationFailed(f"signing key {_quote(kid)} is not an RSA key")
    if jwk.get("alg", ALGORITHM) != ALGORITHM or jwk.get("use", "sig") != "sig":
        raise AuthenticationFailed(f"signing key {_quote(kid)} is not meant for RS256 signatures")
    n, e = jwk.get("n"), jwk.get("e")
    if not isinstance(n, str) or not isinstance(e, str):
        raise AuthenticationFailed(f"signing key {_quote(kid)} lacks its modulus or exponent")
    modulus = int.from_bytes(_b64url(n, what="key modulus"), "big")
    exponent = int.from_bytes(_b64url(e, what="key exponent"), "big")
    if modulus.bit_length() < MIN_RSA_BITS or exponent < 3:
        raise AuthenticationFailed(f"signing key {_quote(kid)} is too weak")
    return rsa.RSAPublicNumbers(exponent, modulus).public_key()


def verify_token(
    token: str, *, keys: Mapping[str, Mapping[str, Any]], expect: Expectations
) -> dict[str, Any]:
    """Check signature, issuer, audience and lifetime; return the claims.

    Order matters: the header is read first only to pick the algorithm and key; no claim is
    looked at before the signature is verified.
    """
    if len(token) > MAX_TOKEN_CHARS:
        raise AuthenticationFailed("ID token is too long")
    if not token.isascii():
        raise AuthenticationFailed("bearer token is not a JWT: it holds non-ASCII characters")
    parts = token.split(".")
    if len(parts) != 3:
        raise AuthenticationFailed("bearer token is not a JWT (header.payload.signature)")
    header = _json_object(_b64url(parts[0], what="header"), what="header")
    alg = header.get("alg")
    if alg != ALGORITHM:
        raise AuthenticationFailed(f"ID token algorithm {_quote(alg)} refused: only RS256")
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise AuthenticationFailed("ID token header names no key id (kid)")
    jwk = keys.get(kid)
    if jwk is None:
        raise UnknownSigningKey(f"ID token signed with unknown key id {_quote(kid)}", kid=kid)
    public_key = _public_key(jwk, kid=kid)
    signature = _b64url(parts[2], what="signature")
    try:
        public_key.verify(
            signature, f"{parts[0]}.{parts[1]}".encode(), padding.PKCS1v15(), hashes.SHA256()
        )
    except InvalidSignature:
        raise AuthenticationFailed("ID token signature does not verify") from None
    claims = _json_object(_b64url(parts[1], what="payload"), what="payload")
    _check_claims(claims, expect=expect)
    return claims


def _number(claims: Mapping[str, Any], name: str) -> float | None:
    value = claims.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise AuthenticationFailed(f"ID token claim {name!r} is not a number")
    return float(value)


def _check_claims(claims: Mapping[str, Any], *, expect: Expectations) -> None:
    issuer = claims.get("iss")
    if issuer not in expect.issuers:
        raise AuthenticationFailed(
            f"ID token issuer {_quote(issuer)} is not one of {list(expect.issuers)}"
        )
    if expect.audience is not None:
        audience = claims.get("aud")
        audiences = audience if isinstance(audience, list) else [audience]
        if expect.audience not in audiences:
            raise AuthenticationFailed(
                f"ID token audience {_quote(audience)} is not {expect.audience!r}"
            )
    now, leeway = expect.now_s, expect.leeway_s
    expires = _number(claims, "exp")
    if expires is None:
        raise AuthenticationFailed("ID token has no expiry (exp)")
    if now > expires + leeway:
        raise AuthenticationFailed("ID token has expired: the sender must mint a new one")
    not_before = _number(claims, "nbf")
    if not_before is not None and now + leeway < not_before:
        raise AuthenticationFailed("ID token is not valid yet (nbf): check the clocks")
    issued = _number(claims, "iat")
    if issued is not None and (now + leeway < issued or issued > expires):
        raise AuthenticationFailed("ID token was issued in the future (iat): check the clocks")
