"""ghcr: GitHub package events, signed like any GitHub webhook."""

from __future__ import annotations

import json

import pytest

from receiver.errors import AuthenticationFailed, MalformedPayload
from receiver.events import Ignored, ImagePush
from receiver.sources import ghcr
from receiver.sources.base import Credentials, RawDelivery
from tests.support import delivery_fixtures

SECRET = Credentials(token=b"ghcr-webhook-secret")


def _edited(**package: object) -> RawDelivery:
    payload = json.loads(delivery_fixtures.body("ghcr", "package_published"))
    payload["package"].update(package)
    headers = delivery_fixtures.read_headers(
        delivery_fixtures.FIXTURES / "ghcr" / "package_published.headers"
    )
    return RawDelivery(headers=headers, body=json.dumps(payload).encode())


def test_published_container_is_an_image_push() -> None:
    delivery = delivery_fixtures.load("ghcr", "package_published")
    ghcr.SOURCE.verify(delivery, SECRET)
    assert ghcr.SOURCE.event_name(delivery) == "package"
    assert ghcr.parse(delivery) == (
        ImagePush(
            source="ghcr",
            event="package",
            repository="ghcr.io/acme-corp/podinfo",
            tag="6.5.4",
            digest="sha256:5b0bcabd1ed22e9fb1310cf6c2dec7cdef19f0ad69efa1f392e94a4333501270",
            delivery_id="7b30ad08-151d-5689-8b3b-b9d74c8dc381",
        ),
    )


def test_name_falls_back_to_owner_and_package_name() -> None:
    payload = json.loads(delivery_fixtures.body("ghcr", "package_published"))
    del payload["package"]["package_version"]["package_url"]
    payload["registry_package"] = payload.pop("package")
    delivery = RawDelivery(
        headers={"x-github-event": "registry_package"}, body=json.dumps(payload).encode()
    )
    (event,) = ghcr.parse(delivery)
    assert isinstance(event, ImagePush)
    assert (event.event, event.repository, event.tag) == (
        "registry_package",
        "ghcr.io/Acme-Corp/podinfo",
        "6.5.4",
    )


def test_untagged_push_keeps_the_digest() -> None:
    delivery = _edited(
        package_version={
            "version": "sha256:feed",
            "package_url": "ghcr.io/acme-corp/podinfo:",
            "container_metadata": {"tag": {"name": "", "digest": ""}},
        }
    )
    (event,) = ghcr.parse(delivery)
    assert isinstance(event, ImagePush)
    assert (event.tag, event.digest) == (None, "sha256:feed")


@pytest.mark.parametrize(
    ("fixture", "reason"),
    [("ping", "ping"), ("package_npm", "not a container package")],
)
def test_ignored(fixture: str, reason: str) -> None:
    delivery = delivery_fixtures.load("ghcr", fixture)
    ghcr.SOURCE.verify(delivery, SECRET)
    (event,) = ghcr.parse(delivery)
    assert isinstance(event, Ignored)
    assert event.reason == reason


def test_deleted_package_is_ignored() -> None:
    body = b'{"action": "deleted", "package": {"name": "podinfo"}}'
    (event,) = ghcr.parse(RawDelivery(headers={"x-github-event": "package"}, body=body))
    assert isinstance(event, Ignored)


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({}, "X-Hub-Signature-256 header missing"),
        ({"x-hub-signature-256": "sha256=" + "0" * 64}, "does not match"),
        ({"x-hub-signature-256": "md5=abc"}, "unsupported algorithm"),
    ],
    ids=["missing", "wrong", "algorithm"],
)
def test_verification_failures(headers: dict[str, str], message: str) -> None:
    delivery = RawDelivery(
        headers={"x-github-event": "package", **headers},
        body=delivery_fixtures.body("ghcr", "package_published"),
    )
    with pytest.raises(AuthenticationFailed, match=message):
        ghcr.SOURCE.verify(delivery, SECRET)


def test_wrong_secret_fails() -> None:
    with pytest.raises(AuthenticationFailed):
        ghcr.SOURCE.verify(
            delivery_fixtures.load("ghcr", "package_published"), Credentials(token=b"x")
        )


@pytest.mark.parametrize(
    "body",
    [b"{", b'{"package": {}}', b'{"action": "published"}'],
    ids=["truncated", "no-action", "no-package"],
)
def test_malformed(body: bytes) -> None:
    with pytest.raises(MalformedPayload):
        ghcr.parse(RawDelivery(headers={"x-github-event": "package"}, body=body))
