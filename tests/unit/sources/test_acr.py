"""acr: Azure Container Registry webhooks; ping and deletions are ignored."""

from __future__ import annotations

import pytest

from receiver.errors import MalformedPayload
from receiver.events import Ignored, ImagePush, Signal
from receiver.sources import acr
from receiver.sources.base import Credentials, RawDelivery
from tests.support import delivery_fixtures


def test_push_names_the_registry_host() -> None:
    delivery = delivery_fixtures.load("acr", "push")
    acr.SOURCE.verify(delivery, Credentials(token=b"path-only"))
    assert acr.parse(delivery) == (
        ImagePush(
            source="acr",
            event="push",
            repository="acmeregistry.azurecr.io/apps/podinfo",
            tag="6.5.4",
            digest="sha256:80f0d5c8786bb9e621a45ece0db56d11cdc624ad20da9fe62e9d25490f331d7d",
            delivery_id="cb8c3971-9adc-488b-bdd8-43cbb4974ff5",
        ),
    )


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (delivery_fixtures.body("acr", "ping"), "ping"),
        (b'{"action": "delete", "target": {"repository": "a"}}', "delete is not a push"),
        (b'{"action": "quarantine"}', "quarantine is not a push"),
    ],
    ids=["ping", "delete", "quarantine"],
)
def test_ignored(body: bytes, reason: str) -> None:
    (event,) = acr.parse(RawDelivery(headers={}, body=body))
    assert isinstance(event, Ignored)
    assert event.reason == reason


def test_chart_push_and_hostless_push_are_signals() -> None:
    chart = b'{"action": "chart_push", "target": {"name": "wordpress", "version": "5.4.0"}}'
    (event,) = acr.parse(RawDelivery(headers={}, body=chart))
    assert isinstance(event, Signal)
    hostless = b'{"action": "push", "target": {"repository": "apps/x", "tag": "1"}}'
    (event,) = acr.parse(RawDelivery(headers={}, body=hostless))
    assert isinstance(event, Signal)


@pytest.mark.parametrize(
    "body", [b"\xff", b'{"target": {}}', b'{"action": 7}'], ids=["binary", "no-action", "number"]
)
def test_malformed(body: bytes) -> None:
    with pytest.raises(MalformedPayload):
        acr.parse(RawDelivery(headers={}, body=body))
