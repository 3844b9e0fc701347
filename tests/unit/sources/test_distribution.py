"""distribution: CNCF registry notification envelopes; only manifest pushes count."""

from __future__ import annotations

import json

import pytest

from receiver.errors import AuthenticationFailed, MalformedPayload
from receiver.events import Ignored, ImagePush, Signal
from receiver.sources import distribution
from receiver.sources.base import Credentials, RawDelivery
from tests.support import delivery_fixtures

TOKEN = Credentials(token=b"distribution-endpoint-token")


def test_manifest_push_after_blob_pushes() -> None:
    delivery = delivery_fixtures.load("distribution", "push")
    distribution.verify(delivery, TOKEN)
    assert distribution.parse(delivery) == (
        ImagePush(
            source="distribution",
            event="push",
            repository="registry.internal.example:5000/platform/podinfo",
            tag="1.4.2",
            digest="sha256:fea8895f450959fa676bcc1df0611ea93823a735a01205fd8622846041d0c7cf",
            delivery_id="asdf-asdf-asdf-asdf-1",
        ),
    )


def test_pull_envelope_is_ignored() -> None:
    (event,) = distribution.parse(delivery_fixtures.load("distribution", "pull"))
    assert isinstance(event, Ignored)
    assert event.event == "pull"


def test_blob_only_envelope_is_ignored() -> None:
    payload = json.loads(delivery_fixtures.body("distribution", "push"))
    payload["events"] = payload["events"][:1]
    (event,) = distribution.parse(RawDelivery(headers={}, body=json.dumps(payload).encode()))
    assert isinstance(event, Ignored)
    assert event.reason == "no manifest push in the envelope"


def test_untagged_manifest_push_and_host_from_target_url() -> None:
    payload = json.loads(delivery_fixtures.body("distribution", "push"))
    manifest = payload["events"][1]
    del manifest["target"]["tag"]
    del manifest["request"]
    (event,) = distribution.parse(RawDelivery(headers={}, body=json.dumps(payload).encode()))
    assert isinstance(event, ImagePush)
    assert (event.repository, event.tag) == (
        "registry.internal.example:5000/platform/podinfo",
        None,
    )


def test_push_without_any_host_is_a_signal() -> None:
    body = (
        b'{"events": [{"action": "push", "target": {"repository": "a/b", "tag": "1",'
        b' "mediaType": "application/vnd.oci.image.manifest.v1+json"}}]}'
    )
    (event,) = distribution.parse(RawDelivery(headers={}, body=body))
    assert isinstance(event, Signal)


@pytest.mark.parametrize(
    "authorization",
    ["distribution-endpoint-token", "Bearer distribution-endpoint-token"],
    ids=["plain", "bearer"],
)
def test_both_token_forms_verify(authorization: str) -> None:
    delivery = RawDelivery(headers={"authorization": authorization}, body=b"{}")
    distribution.verify(delivery, TOKEN)


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({}, "Authorization header missing"),
        ({"authorization": "Bearer other"}, "does not match"),
        ({"authorization": "Basic distribution-endpoint-token"}, "does not match"),
    ],
    ids=["missing", "wrong", "basic"],
)
def test_verification_failures(headers: dict[str, str], message: str) -> None:
    with pytest.raises(AuthenticationFailed, match=message) as caught:
        distribution.verify(RawDelivery(headers=headers, body=b"{}"), TOKEN)
    assert "distribution-endpoint-token" not in caught.value.message


@pytest.mark.parametrize(
    "body",
    [b"", b'{"events": {}}', b'{"events": [{"target": {}}]}'],
    ids=["empty", "events-not-a-list", "event-without-action"],
)
def test_malformed(body: bytes) -> None:
    with pytest.raises(MalformedPayload):
        distribution.parse(RawDelivery(headers={}, body=body))


def test_parse_returns_every_manifest_push_of_the_envelope() -> None:
    payload = json.loads(delivery_fixtures.body("distribution", "push"))
    manifest = payload["events"][1]
    second = json.loads(json.dumps(manifest))
    second["id"] = "asdf-asdf-asdf-asdf-2"
    second["target"]["repository"] = "platform/api"
    second["target"]["tag"] = "2.0.0"
    hostless = json.loads(json.dumps(manifest))
    hostless["id"] = "asdf-asdf-asdf-asdf-3"
    del hostless["request"], hostless["target"]["url"]
    payload["events"] += [second, hostless]
    delivery = RawDelivery(headers={}, body=json.dumps(payload).encode())
    events = distribution.parse(delivery)
    assert [(e.repository, e.tag) for e in events if isinstance(e, ImagePush)] == [
        ("registry.internal.example:5000/platform/podinfo", "1.4.2"),
        ("registry.internal.example:5000/platform/api", "2.0.0"),
    ]
    assert events[2] == Signal(source="distribution", event="push", delivery_id=hostless["id"])
    assert distribution.SOURCE.parse is distribution.parse


def test_parse_of_a_blob_only_envelope_is_one_ignored() -> None:
    payload = json.loads(delivery_fixtures.body("distribution", "push"))
    payload["events"] = payload["events"][:1]
    (event,) = distribution.parse(RawDelivery(headers={}, body=json.dumps(payload).encode()))
    assert isinstance(event, Ignored)
