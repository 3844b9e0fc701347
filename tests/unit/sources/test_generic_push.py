"""The discovery endpoint's own simple push format."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest

from receiver.errors import AuthenticationFailed, MalformedPayload
from receiver.events import GitPush, ImagePush
from receiver.sources import generic_push
from receiver.sources.base import Credentials, RawDelivery


def delivery(body: dict[str, object], secret: bytes = b"k") -> RawDelivery:
    raw = json.dumps(body).encode()
    signature = "sha256=" + hmac.new(secret, raw, hashlib.sha256).hexdigest()
    return RawDelivery(headers={"x-signature": signature, "x-request-id": "r1"}, body=raw)


def test_git_push_with_all_urls_and_changed_files() -> None:
    d = delivery(
        {
            "repository": "https://h/a/b",
            "repositories": ["git@h:a/b.git"],
            "ref": "refs/heads/main",
            "after": "a" * 40,
            "changed": ["x/y"],
        }
    )
    generic_push.SOURCE.verify(d, Credentials(token=b"k"))
    (event,) = generic_push.parse(d)
    assert event == GitPush(
        source="generic-push",
        event="push",
        repo_urls=("https://h/a/b", "git@h:a/b.git"),
        ref="refs/heads/main",
        after="a" * 40,
        changed_paths=frozenset({"x/y"}),
        delivery_id="r1",
    )


def test_absent_changed_list_means_unknown() -> None:
    (event,) = generic_push.parse(delivery({"repository": "https://h/a/b", "ref": "refs/tags/v1"}))
    assert isinstance(event, GitPush) and event.changed_paths is None


@pytest.mark.parametrize(
    ("image", "repository", "tag"),
    [
        ("host:5000/team/web:1.2", "host:5000/team/web", "1.2"),
        ("host:5000/team/web", "host:5000/team/web", None),
    ],
)
def test_image_push(image: str, repository: str, tag: str | None) -> None:
    (event,) = generic_push.parse(delivery({"image": image}))
    assert isinstance(event, ImagePush) and (event.repository, event.tag) == (repository, tag)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"ref": "refs/heads/main"}, "name a 'repository'"),
        ({"repository": "https://h/a"}, "'ref' is required"),
        ({"repository": "https://h/a", "ref": "main"}, "full ref name"),
    ],
)
def test_incomplete_bodies_are_malformed(body: dict[str, object], message: str) -> None:
    with pytest.raises(MalformedPayload, match=message):
        generic_push.parse(delivery(body))


def test_wrong_key_fails_verification() -> None:
    with pytest.raises(AuthenticationFailed):
        generic_push.SOURCE.verify(
            delivery({"image": "a/b"}, secret=b"other"), Credentials(token=b"k")
        )
