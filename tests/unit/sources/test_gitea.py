"""Gitea/Forgejo source: bare-hex signatures, push / delete parsing, capped commit lists."""

from __future__ import annotations

import pytest

from receiver.errors import AuthenticationFailed, MalformedPayload
from receiver.events import GitPush, Signal
from receiver.sources import gitea
from receiver.sources.base import RawDelivery
from tests.support import signed_fixtures as fx

CREDS = fx.credentials("gitea")
URLS = (
    "https://git.example.com/platform/fleet-infra.git",
    "ssh://git@git.example.com:2222/platform/fleet-infra.git",
    "https://git.example.com/platform/fleet-infra",
)
SIGNATURE_HEADERS = (
    "x-forgejo-signature",
    "x-gitea-signature",
    "x-gogs-signature",
    "x-hub-signature",
    "x-hub-signature-256",
)


def test_push_is_parsed_into_every_field() -> None:
    delivery = fx.load("gitea", "push")
    gitea.verify(delivery, CREDS)
    assert gitea.parse(delivery) == (
        GitPush(
            source="gitea",
            event="push",
            repo_urls=URLS,
            ref="refs/heads/main",
            before="28e1879d029cb852e4844d9c718537df08844e03",
            after="bffeb74224043ba2feb48d137756c8a9331c449a",
            default_branch="main",
            changed_paths=frozenset({"apps/podinfo/hpa.yaml", "apps/podinfo/release.yaml"}),
            delivery_id="f6266f16-1bf3-46a5-9ea4-602e06ead473",
            repo_name="platform/fleet-infra",
        ),
    )


def test_forgejo_tag_push() -> None:
    delivery = fx.load("gitea", "forgejo_tag_push")
    gitea.verify(delivery, CREDS)
    (push,) = gitea.parse(delivery)
    assert isinstance(push, GitPush)
    assert push.ref == "refs/tags/v2.0.0"
    assert push.delivery_id == "a1b2c3d4-0000-4000-8000-00000000f0f0"
    assert push.repo_urls[0] == "https://codeberg.org/platform/fleet-infra.git"
    assert push.changed_paths is None  # a new ref


def test_capped_commit_list_has_no_changed_paths() -> None:
    payload = fx.load_json("gitea", "push")
    payload["total_commits"] = 7
    (push,) = gitea.parse(fx.redelivered("gitea", "push", payload))
    assert isinstance(push, GitPush)
    assert push.changed_paths is None


def test_branch_delete_event() -> None:
    (push,) = gitea.parse(fx.load("gitea", "delete"))
    assert isinstance(push, GitPush)
    assert (push.event, push.ref, push.deleted, push.after) == (
        "delete",
        "refs/heads/feature/old",
        True,
        None,
    )
    assert push.repo_urls == URLS


def test_tag_delete_event() -> None:
    payload = fx.load_json("gitea", "delete")
    payload.update(ref="v0.1.0", ref_type="tag")
    (push,) = gitea.parse(fx.redelivered("gitea", "delete", payload))
    assert isinstance(push, GitPush)
    assert push.ref == "refs/tags/v0.1.0"


def test_pull_request_is_a_signal() -> None:
    (event,) = gitea.parse(fx.load("gitea", "pull_request"))
    assert isinstance(event, Signal)


@pytest.mark.parametrize("header", ["x-gitea-signature", "x-hub-signature-256"])
def test_each_signature_header_alone_verifies(header: str) -> None:
    signed = fx.load("gitea", "push")
    kept = RawDelivery(headers={header: signed.headers[header]}, body=signed.body)
    gitea.verify(kept, CREDS)


def test_forgejo_signature_alone_verifies() -> None:
    signed = fx.load("gitea", "forgejo_tag_push")
    gitea.verify(
        RawDelivery(
            headers={"x-forgejo-signature": signed.headers["x-forgejo-signature"]}, body=signed.body
        ),
        CREDS,
    )


def test_bad_forgejo_signature_is_not_rescued_by_gitea_signature() -> None:
    delivery = fx.with_headers(fx.load("gitea", "forgejo_tag_push"), x_forgejo_signature="0" * 64)
    with pytest.raises(AuthenticationFailed, match="X-Forgejo-Signature does not match"):
        gitea.verify(delivery, CREDS)


def test_prefixed_gitea_signature_fails() -> None:
    signed = fx.load("gitea", "push")
    value = "sha256=" + signed.headers["x-gitea-signature"]
    with pytest.raises(AuthenticationFailed, match="without a sha256= prefix"):
        gitea.verify(RawDelivery(headers={"x-gitea-signature": value}, body=signed.body), CREDS)


def test_unsupported_algorithm_on_hub_header_fails() -> None:
    signed = fx.load("gitea", "push")
    headers = {"x-hub-signature-256": "md5=" + "0" * 32}
    with pytest.raises(AuthenticationFailed, match="unsupported algorithm"):
        gitea.verify(RawDelivery(headers=headers, body=signed.body), CREDS)


def test_missing_signature_says_what_to_do() -> None:
    delivery = fx.without(fx.load("gitea", "push"), *SIGNATURE_HEADERS)
    with pytest.raises(AuthenticationFailed, match="set a secret on the Gitea/Forgejo webhook"):
        gitea.verify(delivery, CREDS)


def test_empty_signature_from_a_secretless_webhook_fails() -> None:
    delivery = fx.with_headers(
        fx.without(fx.load("gitea", "push"), *SIGNATURE_HEADERS), x_gitea_signature=""
    )
    with pytest.raises(AuthenticationFailed):
        gitea.verify(delivery, CREDS)


def test_flipped_body_byte_fails() -> None:
    signed = fx.load("gitea", "push")
    with pytest.raises(AuthenticationFailed):
        gitea.verify(RawDelivery(headers=signed.headers, body=fx.flip_byte(signed.body)), CREDS)


def test_malformed_bodies() -> None:
    with pytest.raises(MalformedPayload, match="Gitea push"):
        gitea.parse(fx.load("gitea", "push", body=b'{"ref": "refs/heads/main"}'))
    with pytest.raises(MalformedPayload, match="Gitea delete"):
        gitea.parse(
            fx.load(
                "gitea", "delete", body=b'{"ref": "x", "ref_type": "bookmark", "repository": {}}'
            )
        )
