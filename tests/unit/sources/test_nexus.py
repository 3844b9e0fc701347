"""nexus: HMAC-SHA1 of the body; component creations are signals (no registry host known)."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from receiver.errors import AuthenticationFailed, MalformedPayload
from receiver.events import Ignored, Signal
from receiver.sources import nexus
from receiver.sources.base import Credentials, RawDelivery
from tests.support import delivery_fixtures

KEY = Credentials(token=b"nexus-secret-key")


def test_created_component_verifies_and_is_a_signal() -> None:
    delivery = delivery_fixtures.load("nexus", "component_created")
    nexus.verify(delivery, KEY)
    assert nexus.event_name(delivery) == "rm:repository:component"
    assert nexus.parse(delivery) == (
        Signal(
            source="nexus",
            event="rm:repository:component",
            delivery_id=delivery.header("x-nexus-webhook-delivery"),
        ),
    )


def test_signature_is_hex_hmac_sha1_of_the_raw_body() -> None:
    body = b'{"action":"CREATED","repositoryName":"docker-hosted"}'
    signature = hmac.new(b"nexus-secret-key", body, hashlib.sha1).hexdigest()
    nexus.verify(RawDelivery(headers={"x-nexus-webhook-signature": signature}, body=body), KEY)
    upper = RawDelivery(headers={"x-nexus-webhook-signature": signature.upper()}, body=body)
    nexus.verify(upper, KEY)


def test_deleted_component_and_audit_events_are_ignored() -> None:
    (deleted,) = nexus.parse(delivery_fixtures.load("nexus", "component_deleted"))
    assert isinstance(deleted, Ignored)
    assert deleted.reason == "DELETED is not a push"
    audit = RawDelivery(
        headers={"x-nexus-webhook-id": "rm:global:audit"}, body=b'{"action": "CREATED"}'
    )
    (event,) = nexus.parse(audit)
    assert isinstance(event, Ignored)


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({}, "X-Nexus-Webhook-Signature header missing"),
        ({"x-nexus-webhook-signature": "0" * 40}, "does not match"),
        ({"x-nexus-webhook-signature": "sha1=" + "0" * 40}, "does not match"),
    ],
    ids=["missing", "wrong", "prefixed"],
)
def test_verification_failures(headers: dict[str, str], message: str) -> None:
    body = delivery_fixtures.body("nexus", "component_created")
    with pytest.raises(AuthenticationFailed, match=message) as caught:
        nexus.verify(RawDelivery(headers=headers, body=body), KEY)
    assert "nexus-secret-key" not in caught.value.message


def test_wrong_key_and_tampered_body_fail() -> None:
    delivery = delivery_fixtures.load("nexus", "component_created")
    with pytest.raises(AuthenticationFailed):
        nexus.verify(delivery, Credentials(token=b"other-key"))
    tampered = RawDelivery(headers=delivery.headers, body=delivery.body.replace(b"1.4.2", b"6.6.6"))
    with pytest.raises(AuthenticationFailed):
        nexus.verify(tampered, KEY)


@pytest.mark.parametrize(
    "body", [b"", b"[]", b'{"component": {}}'], ids=["empty", "array", "no-action"]
)
def test_malformed(body: bytes) -> None:
    with pytest.raises(MalformedPayload):
        nexus.parse(
            RawDelivery(headers={"x-nexus-webhook-id": "rm:repository:component"}, body=body)
        )
