"""`generic-hmac`: `X-Signature: <algo>=<hex>` over the raw body, sha1/sha256/sha512."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from receiver.errors import AuthenticationFailed
from receiver.events import Signal
from receiver.sources import generic_hmac
from receiver.sources.base import Credentials, RawDelivery

KEY = b"fixture-secret"
BODY = b'{"source": "ci", "action": "reconcile"}'


def _signed(algorithm: str, body: bytes = BODY) -> RawDelivery:
    digest = hmac.new(KEY, body, getattr(hashlib, algorithm)).hexdigest()
    return RawDelivery(headers={"x-signature": f"{algorithm}={digest}"}, body=body)


@pytest.mark.parametrize("algorithm", ["sha1", "sha256", "sha512"])
def test_each_algorithm_verifies(algorithm: str) -> None:
    generic_hmac.verify(_signed(algorithm), Credentials(token=KEY))


def test_uppercase_hex_is_accepted() -> None:
    delivery = _signed("sha256")
    value = delivery.headers["x-signature"]
    generic_hmac.verify(
        RawDelivery(headers={"x-signature": value.upper()}, body=BODY), Credentials(token=KEY)
    )


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({}, "X-Signature header missing"),
        ({"x-signature": "sha256=" + "0" * 64}, "does not match"),
        ({"x-signature": "md5=" + "0" * 32}, "unsupported algorithm"),
        ({"x-signature": "0" * 64}, "not of the form"),
    ],
    ids=["missing", "wrong", "wrong-algorithm", "no-prefix"],
)
def test_bad_signatures_fail(headers: dict[str, str], message: str) -> None:
    with pytest.raises(AuthenticationFailed, match=message):
        generic_hmac.verify(RawDelivery(headers=headers, body=BODY), Credentials(token=KEY))


def test_flipped_body_byte_fails() -> None:
    signed = _signed("sha256")
    with pytest.raises(AuthenticationFailed):
        generic_hmac.verify(
            RawDelivery(headers=signed.headers, body=BODY.replace(b"ci", b"cj")),
            Credentials(token=KEY),
        )


def test_wrong_key_fails() -> None:
    with pytest.raises(AuthenticationFailed):
        generic_hmac.verify(_signed("sha256"), Credentials(token=b"other"))


def test_parse_is_a_signal_whatever_the_body() -> None:
    assert generic_hmac.parse(RawDelivery(headers={}, body=b"\x00")) == (
        Signal(source="generic-hmac"),
    )
