"""quay: repository push notifications; build notifications are ignored."""

from __future__ import annotations

import pytest

from receiver.errors import MalformedPayload
from receiver.events import Ignored, ImagePush
from receiver.sources import quay
from receiver.sources.base import Credentials, RawDelivery
from tests.support import delivery_fixtures


def test_repo_push_uses_docker_url() -> None:
    delivery = delivery_fixtures.load("quay", "repo_push")
    quay.SOURCE.verify(delivery, Credentials(token=b"path-only"))
    assert {event.repository for event in quay.parse(delivery) if isinstance(event, ImagePush)} == {
        "quay.io/acme/podinfo"
    }


def test_legacy_tag_map_and_self_hosted_host() -> None:
    body = (
        b'{"repository": "team/api", "docker_url": "quay.corp.example:8443/team/api",'
        b' "updated_tags": {"2.0.1": "b750fe79269d2ec9a3c593ef05b4332b1d1a02a6"}}'
    )
    (event,) = quay.parse(RawDelivery(headers={}, body=body))
    assert isinstance(event, ImagePush)
    assert (event.repository, event.tag) == ("quay.corp.example:8443/team/api", "2.0.1")


def test_build_notification_is_ignored() -> None:
    (event,) = quay.parse(delivery_fixtures.load("quay", "build_success"))
    assert isinstance(event, Ignored)
    assert event.event == "build"


def test_push_without_tags_names_no_tag() -> None:
    body = b'{"repository": "acme/app", "docker_url": "quay.io/acme/app", "updated_tags": []}'
    (event,) = quay.parse(RawDelivery(headers={}, body=body))
    assert isinstance(event, ImagePush)
    assert event.tag is None


@pytest.mark.parametrize(
    "body",
    [b"[1]", b"{", b'{"updated_tags": ["x"]}', b'{"repository": "a/b", "updated_tags": 3}'],
    ids=["array", "truncated", "no-repository", "tags-not-a-list"],
)
def test_malformed(body: bytes) -> None:
    with pytest.raises(MalformedPayload):
        quay.parse(RawDelivery(headers={}, body=body))


def test_parse_returns_one_push_per_updated_tag() -> None:
    delivery = delivery_fixtures.load("quay", "repo_push")
    assert quay.parse(delivery) == (
        ImagePush(
            source="quay", event="repo_push", repository="quay.io/acme/podinfo", tag="v6.5.4"
        ),
        ImagePush(
            source="quay", event="repo_push", repository="quay.io/acme/podinfo", tag="latest"
        ),
    )
    assert quay.SOURCE.parse is quay.parse


def test_parse_of_a_legacy_tag_map_and_of_no_tags() -> None:
    legacy = b'{"repository": "a/b", "updated_tags": {"1": "x", "2": "y"}}'
    events = quay.parse(RawDelivery(headers={}, body=legacy))
    assert [e.tag for e in events if isinstance(e, ImagePush)] == ["1", "2"]
    empty = b'{"repository": "a/b", "updated_tags": []}'
    (event,) = quay.parse(RawDelivery(headers={}, body=empty))
    assert isinstance(event, ImagePush) and event.tag is None
    (build,) = quay.parse(delivery_fixtures.load("quay", "build_success"))
    assert isinstance(build, Ignored)
