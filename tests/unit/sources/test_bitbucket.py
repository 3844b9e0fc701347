"""Bitbucket source (Flux's `bitbucket` type): Server and Cloud pushes, ping, HMAC failures."""

from __future__ import annotations

import pytest

from receiver.errors import AuthenticationFailed, MalformedPayload
from receiver.events import GitPush, Ignored, Signal
from receiver.sources import bitbucket
from receiver.sources.base import RawDelivery
from tests.support import signed_fixtures as fx

CREDS = fx.credentials("bitbucket")
ZERO = "0" * 40
SERVER_URLS = (
    "ssh://git@bitbucket.example.com:7999/plat/fleet-infra.git",
    "https://bitbucket.example.com/scm/plat/fleet-infra.git",
    "https://bitbucket.example.com/projects/PLAT/repos/fleet-infra/browse",
)


def test_server_push_gives_one_git_push_per_changed_ref() -> None:
    delivery = fx.load("bitbucket", "server_push")
    bitbucket.verify(delivery, CREDS)
    common = {
        "source": "bitbucket",
        "event": "repo:refs_changed",
        "repo_urls": SERVER_URLS,
        "delivery_id": "cfb9d4b6-4e5a-4d49-9f5c-1b7c3b6e1e01",
        "repo_name": "PLAT/fleet-infra",
    }
    assert bitbucket.parse(delivery) == (
        GitPush(
            ref="refs/heads/main",
            before="ecddabb624f6f5ba43816f5926e580a5f680a932",
            after="178864a7d521b6f5e720b386b2c2b0ef8563e0dc",
            **common,  # type: ignore[arg-type]
        ),
        GitPush(
            ref="refs/tags/v1.4.0",
            before=ZERO,
            after="178864a7d521b6f5e720b386b2c2b0ef8563e0dc",
            **common,
        ),  # type: ignore[arg-type]
        GitPush(
            ref="refs/heads/feature/old",
            before="a00945762949b7787ecabc388c0e20b1b85f0b1e",
            after=None,
            deleted=True,
            **common,  # type: ignore[arg-type]
        ),
    )


def test_cloud_push_gives_one_git_push_per_change() -> None:
    delivery = fx.load("bitbucket", "cloud_push")
    bitbucket.verify(delivery, CREDS)
    main, tag = bitbucket.parse(delivery)
    assert main == GitPush(
        source="bitbucket",
        event="repo:push",
        repo_urls=("https://bitbucket.org/acme/fleet-infra",),
        ref="refs/heads/main",
        before="ecddabb624f6f5ba43816f5926e580a5f680a932",
        after="178864a7d521b6f5e720b386b2c2b0ef8563e0dc",
        delivery_id="0a3f0e1c-7f0b-4f3a-9d5c-5a2f1b7c9e00",
        repo_name="acme/fleet-infra",
    )
    assert isinstance(tag, GitPush)
    assert (tag.ref, tag.deleted, tag.after, tag.before) == (
        "refs/tags/v0.9.0",
        True,
        None,
        "a00945762949b7787ecabc388c0e20b1b85f0b1e",
    )
    assert main.changed_paths is None  # Bitbucket lists no files


def test_server_ping_is_ignored() -> None:
    delivery = fx.load("bitbucket", "server_ping")
    bitbucket.verify(delivery, CREDS)
    assert bitbucket.parse(delivery) == (
        Ignored(
            source="bitbucket",
            event="diagnostics:ping",
            reason="ping",
            delivery_id="cfb9d4b6-4e5a-4d49-9f5c-1b7c3b6e1e01",
        ),
    )


@pytest.mark.parametrize("event", ["server_pr_opened", "cloud_pullrequest_created"])
def test_pull_requests_are_signals(event: str) -> None:
    (parsed,) = bitbucket.parse(fx.load("bitbucket", event))
    assert isinstance(parsed, Signal)


def test_push_without_changes_is_a_signal() -> None:
    payload = fx.load_json("bitbucket", "server_push")
    payload["changes"] = []
    assert bitbucket.parse(fx.redelivered("bitbucket", "server_push", payload)) == (
        Signal(
            source="bitbucket",
            event="repo:refs_changed",
            delivery_id="cfb9d4b6-4e5a-4d49-9f5c-1b7c3b6e1e01",
        ),
    )


def test_sha1_signature_is_accepted_as_flux_does() -> None:
    signed = fx.load("bitbucket", "server_push")
    sha1 = fx.fill({"x-hub-signature": "sha1={hmac_sha1}"}, body=signed.body, creds=CREDS)
    bitbucket.verify(RawDelivery(headers=sha1, body=signed.body), CREDS)


def test_hub_signature_256_takes_precedence() -> None:
    delivery = fx.with_headers(
        fx.load("bitbucket", "server_push"), x_hub_signature_256="sha256=" + "0" * 64
    )
    with pytest.raises(AuthenticationFailed, match="X-Hub-Signature-256"):
        bitbucket.verify(delivery, CREDS)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (None, "X-Hub-Signature header missing: set a secret on the Bitbucket webhook"),
        ("sha256=" + "0" * 64, "does not match"),
        ("md5=" + "0" * 32, "unsupported algorithm"),
        ("0" * 64, "not of the form"),
    ],
    ids=["missing", "wrong", "wrong-algorithm", "no-prefix"],
)
def test_bad_signatures_fail(value: str | None, message: str) -> None:
    delivery = fx.without(fx.load("bitbucket", "cloud_push"), "x-hub-signature")
    if value is not None:
        delivery = fx.with_headers(delivery, x_hub_signature=value)
    with pytest.raises(AuthenticationFailed, match=message):
        bitbucket.verify(delivery, CREDS)


def test_flipped_body_byte_fails() -> None:
    signed = fx.load("bitbucket", "server_push")
    with pytest.raises(AuthenticationFailed):
        bitbucket.verify(RawDelivery(headers=signed.headers, body=fx.flip_byte(signed.body)), CREDS)


def test_malformed_bodies() -> None:
    payload = fx.load_json("bitbucket", "server_push")
    changes = payload["changes"]
    assert isinstance(changes, list)
    changes[0]["type"] = "MERGE"
    with pytest.raises(MalformedPayload, match="Bitbucket Server push"):
        bitbucket.parse(fx.redelivered("bitbucket", "server_push", payload))
    with pytest.raises(MalformedPayload, match="Bitbucket Cloud push"):
        bitbucket.parse(fx.load("bitbucket", "cloud_push", body=b'{"push": {}}'))


@pytest.mark.parametrize(
    "links",
    [{}, {"html": {}}, {"html": {"href": "https://bitbucket.org/%7Bteam-uuid%7D/%7Brepo%7D"}}],
    ids=["no-links", "no-href", "uuid-href"],
)
def test_cloud_push_is_named_by_full_name_when_links_are_missing_or_odd(
    links: dict[str, object],
) -> None:
    payload = fx.load_json("bitbucket", "cloud_push")
    payload["repository"]["links"] = links  # type: ignore[index]
    main = bitbucket.parse(fx.redelivered("bitbucket", "cloud_push", payload))[0]
    assert isinstance(main, GitPush)
    assert "https://bitbucket.org/acme/fleet-infra" in main.repo_urls
