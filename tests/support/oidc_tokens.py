"""A throw-away OIDC issuer for tests: a fresh RSA key, its JWK, and tokens signed with it.

Tokens are built by hand (base64url JSON + PKCS#1 v1.5 SHA-256), so tests can also forge the
bad ones: `alg: none`, HS256 keyed with the public modulus, a foreign key, a tampered payload.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _segment(value: dict[str, Any]) -> str:
    return b64url(json.dumps(value, separators=(",", ":")).encode())


def _int_bytes(value: int) -> bytes:
    return value.to_bytes((value.bit_length() + 7) // 8, "big")


@dataclass
class TestIssuer:
    """Signs ID tokens; `jwks()` is what its `jwks_uri` would serve."""

    __test__ = False  # not a pytest test class

    kid: str = "test-key-1"
    key: rsa.RSAPrivateKey = field(
        default_factory=lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048)
    )

    def jwk(self) -> dict[str, str]:
        numbers = self.key.public_key().public_numbers()
        return {
            "kty": "RSA",
            "alg": "RS256",
            "use": "sig",
            "kid": self.kid,
            "n": b64url(_int_bytes(numbers.n)),
            "e": b64url(_int_bytes(numbers.e)),
        }

    def keys(self) -> dict[str, dict[str, str]]:
        return {self.kid: self.jwk()}

    def jwks(self) -> dict[str, list[dict[str, str]]]:
        return {"keys": [self.jwk()]}

    def sign(self, claims: dict[str, Any], **header: Any) -> str:
        head = {"alg": "RS256", "typ": "JWT", "kid": self.kid, **header}
        signing_input = f"{_segment(head)}.{_segment(claims)}"
        signature = self.key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        return f"{signing_input}.{b64url(signature)}"

    def unsigned(self, claims: dict[str, Any]) -> str:
        return f"{_segment({'alg': 'none', 'kid': self.kid})}.{_segment(claims)}."

    def hs256_with_public_key(self, claims: dict[str, Any]) -> str:
        """The classic key-confusion forgery: HMAC keyed with the public key's modulus."""
        signing_input = f"{_segment({'alg': 'HS256', 'kid': self.kid})}.{_segment(claims)}"
        key = self.jwk()["n"].encode()
        mac = hmac.new(key, signing_input.encode(), hashlib.sha256).digest()
        return f"{signing_input}.{b64url(mac)}"
