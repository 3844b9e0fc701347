"""dockerhub: no payload auth; every delivery is a push on docker.io."""

from __future__ import annotations

import pytest

from receiver.errors import MalformedPayload
from receiver.events import ImagePush
from receiver.sources import dockerhub
from receiver.sources.base import Credentials, RawDelivery
from tests.support import delivery_fixtures


def test_push_names_the_image_on_docker_io() -> None:
    delivery = delivery_fixtures.load("dockerhub", "push")
    dockerhub.SOURCE.verify(delivery, Credentials(token=b"path-only"))
    assert dockerhub.parse(delivery) == (
        ImagePush(
            source="dockerhub", event="push", repository="docker.io/acme-corp/podinfo", tag="6.5.4"
        ),
    )


def test_official_image_keeps_its_short_name_for_routing_to_expand() -> None:
    (event,) = dockerhub.parse(delivery_fixtures.load("dockerhub", "push_official"))
    assert isinstance(event, ImagePush)
    assert (event.repository, event.tag) == ("docker.io/nginx", "1.27-alpine")


def test_verification_accepts_anything_the_secret_path_let_in() -> None:
    # Docker Hub signs nothing: the webhook path digest is the only credential (as in Flux).
    dockerhub.SOURCE.verify(RawDelivery(headers={}, body=b"junk"), Credentials(token=b"t"))
    assert dockerhub.SOURCE.event_name(RawDelivery(headers={}, body=b"")) is None


def test_repository_from_namespace_and_name_when_repo_name_is_absent() -> None:
    body = b'{"push_data": {"tag": "v1"}, "repository": {"namespace": "acme", "name": "api"}}'
    (event,) = dockerhub.parse(RawDelivery(headers={}, body=body))
    assert isinstance(event, ImagePush)
    assert event.repository == "docker.io/acme/api"


@pytest.mark.parametrize(
    "body",
    [b"nope", b"{}", b'{"push_data": {"tag": "x"}, "repository": {}}', b'{"push_data": []}'],
    ids=["junk", "empty", "no-name", "wrong-type"],
)
def test_malformed(body: bytes) -> None:
    with pytest.raises(MalformedPayload):
        dockerhub.parse(RawDelivery(headers={}, body=body))
