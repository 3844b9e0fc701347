"""harbor: Authorization header equals the token; PUSH_ARTIFACT in both payload formats."""

from __future__ import annotations

import pytest

from receiver.errors import AuthenticationFailed, MalformedPayload
from receiver.events import Ignored, ImagePush, Signal
from receiver.sources import harbor
from receiver.sources.base import Credentials, RawDelivery
from tests.support import delivery_fixtures

TOKEN = Credentials(token=b"harbor-webhook-token")


def test_push_artifact_default_format() -> None:
    delivery = delivery_fixtures.load("harbor", "push_artifact")
    harbor.verify(delivery, TOKEN)
    assert harbor.parse(delivery) == (
        ImagePush(
            source="harbor",
            event="PUSH_ARTIFACT",
            repository="harbor.example.com:8443/platform/podinfo",
            tag="1.4.2",
            digest="sha256:76525f02955aec223342400a080c73024c995c9db1ba2eabf7505cf3bdf3f1f0",
        ),
    )


def test_push_artifact_cloudevents_format() -> None:
    delivery = delivery_fixtures.load("harbor", "push_artifact_cloudevents")
    harbor.verify(delivery, TOKEN)
    (event,) = harbor.parse(delivery)
    assert isinstance(event, ImagePush)
    assert (event.repository, event.tag, event.delivery_id) == (
        "harbor.example.com/charts/podinfo",
        "v2.0.0",
        "4b0c2f1e-1f0a-4c7c-9a7e-2f3b0b5d8a11",
    )


def test_untagged_push_takes_the_digest_from_the_resource_url() -> None:
    body = (
        b'{"type": "PUSH_ARTIFACT", "event_data": {"resources": [{"resource_url":'
        b' "harbor.example.com/p/app@sha256:abc"}]}}'
    )
    (event,) = harbor.parse(RawDelivery(headers={}, body=body))
    assert isinstance(event, ImagePush)
    assert (event.repository, event.tag, event.digest) == (
        "harbor.example.com/p/app",
        None,
        "sha256:abc",
    )


def test_delete_is_ignored_and_chart_upload_is_a_signal() -> None:
    (deleted,) = harbor.parse(delivery_fixtures.load("harbor", "delete_artifact"))
    assert isinstance(deleted, Ignored)
    assert deleted.event == "DELETE_ARTIFACT"
    (chart,) = harbor.parse(RawDelivery(headers={}, body=b'{"type": "UPLOAD_CHART"}'))
    assert isinstance(chart, Signal)


def test_push_without_resource_url_cannot_be_routed() -> None:
    body = b'{"type": "PUSH_ARTIFACT", "event_data": {"resources": [{"tag": "1"}]}}'
    (event,) = harbor.parse(RawDelivery(headers={}, body=body))
    assert isinstance(event, Signal)


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({}, "Authorization header missing"),
        ({"authorization": "wrong-token"}, "does not match"),
        ({"authorization": "Bearer harbor-webhook-token"}, "does not match"),
        ({"authorization": "harbor-webhook-token "}, "does not match"),
    ],
    ids=["missing", "wrong", "bearer-prefixed", "trailing-space"],
)
def test_verification_failures(headers: dict[str, str], message: str) -> None:
    delivery = RawDelivery(headers=headers, body=delivery_fixtures.body("harbor", "push_artifact"))
    with pytest.raises(AuthenticationFailed, match=message) as caught:
        harbor.verify(delivery, TOKEN)
    assert "harbor-webhook-token" not in caught.value.message


@pytest.mark.parametrize(
    "body",
    [b"", b'{"event_data": {}}', b'{"type": "PUSH_ARTIFACT", "event_data": {"resources": 1}}'],
    ids=["empty", "no-type", "resources-not-a-list"],
)
def test_malformed(body: bytes) -> None:
    with pytest.raises(MalformedPayload):
        harbor.parse(RawDelivery(headers={}, body=body))


def test_parse_returns_one_push_per_resource() -> None:
    body = (
        b'{"type": "PUSH_ARTIFACT", "event_data": {"resources": ['
        b'{"tag": "1.0", "resource_url": "harbor.example.com/p/app:1.0"},'
        b'{"tag": "untagged-and-unroutable"},'
        b'{"digest": "sha256:abc", "resource_url": "harbor.example.com/p/app@sha256:abc"},'
        b'{"tag": "2.0", "resource_url": "harbor.example.com/p/other:2.0"}]}}'
    )
    delivery = RawDelivery(headers={}, body=body)
    events = harbor.parse(delivery)
    assert [(e.repository, e.tag, e.digest) for e in events if isinstance(e, ImagePush)] == [
        ("harbor.example.com/p/app", "1.0", None),
        ("harbor.example.com/p/app", None, "sha256:abc"),
        ("harbor.example.com/p/other", "2.0", None),
    ]
    assert len(events) == 3
    assert harbor.SOURCE.parse is harbor.parse


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        (b'{"type": "DELETE_ARTIFACT", "event_data": {"resources": [{}]}}', Ignored),
        (b'{"type": "UPLOAD_CHART"}', Signal),
        (b'{"type": "PUSH_ARTIFACT", "event_data": {"resources": []}}', Signal),
    ],
    ids=["delete", "chart", "no-resources"],
)
def test_parse_of_a_delivery_without_pushes_is_one_event(body: bytes, kind: type) -> None:
    (event,) = harbor.parse(RawDelivery(headers={}, body=body))
    assert isinstance(event, kind)
