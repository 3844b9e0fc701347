"""GitHub source: HMAC verification (GitHub's own test vector), push parsing, and Gitea pushes
arriving through `type: github` as Flux serves them."""

from __future__ import annotations

import copy
from urllib.parse import urlencode

import pytest

from receiver.errors import AuthenticationFailed, MalformedPayload
from receiver.events import GitPush, Ignored, Signal
from receiver.sources import github
from receiver.sources.base import Credentials, RawDelivery, hmac_matches
from tests.support import signed_fixtures as fx

CREDS = fx.credentials("github")
ZERO = "0" * 40


def _push(payload: dict[str, object] | None = None) -> GitPush:
    delivery = (
        fx.load("github", "push") if payload is None else fx.redelivered("github", "push", payload)
    )
    github.verify(delivery, CREDS)
    (event,) = github.parse(delivery)
    assert isinstance(event, GitPush)
    return event


def test_githubs_documented_test_vector() -> None:
    signature = "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    assert hmac_matches(
        key=b"It's a Secret to Everybody",
        body=b"Hello, World!",
        algorithm="sha256",
        hex_digest=signature,
    )
    delivery = RawDelivery(
        headers={"x-hub-signature-256": f"sha256={signature}"}, body=b"Hello, World!"
    )
    github.verify(delivery, Credentials(token=b"It's a Secret to Everybody"))
    with pytest.raises(AuthenticationFailed):
        github.verify(delivery, Credentials(token=b"It's a Secret to Everybody!"))


def test_push_is_parsed_into_every_field() -> None:
    push = _push()
    assert push == GitPush(
        source="github",
        event="push",
        repo_urls=(
            "https://github.com/acme/fleet-infra.git",
            "git@github.com:acme/fleet-infra.git",
            "https://github.com/acme/fleet-infra",
            "git://github.com/acme/fleet-infra.git",
        ),
        ref="refs/heads/main",
        before="6113728f27ae82c7b1a177c8d03f9e96e0adf246",
        after="d4e5f60718293a4b5c6d7e8f90a1b8f1b1e9a2c3",
        deleted=False,
        default_branch="main",
        changed_paths=frozenset(
            {
                "apps/podinfo/hpa.yaml",
                "apps/podinfo/release.yaml",
                "clusters/staging/old.yaml",
                "clusters/staging/kustomization.yaml",
            }
        ),
        delivery_id="72d3162e-cc78-11e3-81ab-4c9367dc0958",
        repo_name="acme/fleet-infra",
    )


def test_sha1_header_alone_is_accepted() -> None:
    delivery = fx.without(fx.load("github", "push"), "x-hub-signature-256")
    github.verify(delivery, CREDS)


def test_bad_sha256_header_is_not_rescued_by_a_good_sha1_header() -> None:
    delivery = fx.with_headers(fx.load("github", "push"), x_hub_signature_256="sha256=" + "0" * 64)
    with pytest.raises(AuthenticationFailed, match="X-Hub-Signature-256 does not match"):
        github.verify(delivery, CREDS)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("sha256=" + "0" * 64, "does not match"),
        ("md5=" + "0" * 32, "unsupported algorithm"),
        ("757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17", "not of the form"),
        ("sha256=", "not of the form"),
    ],
    ids=["wrong-signature", "wrong-algorithm", "no-prefix", "empty-digest"],
)
def test_bad_signature_headers_fail(value: str, message: str) -> None:
    delivery = fx.with_headers(
        fx.without(fx.load("github", "push"), "x-hub-signature"), x_hub_signature_256=value
    )
    with pytest.raises(AuthenticationFailed, match=message) as caught:
        github.verify(delivery, CREDS)
    assert "fixture-secret" not in caught.value.message


def test_missing_signature_says_what_to_do() -> None:
    delivery = fx.without(fx.load("github", "push"), "x-hub-signature-256", "x-hub-signature")
    with pytest.raises(
        AuthenticationFailed, match="X-Hub-Signature-256 header missing: set a secret"
    ):
        github.verify(delivery, CREDS)


def test_flipped_body_byte_fails() -> None:
    signed = fx.load("github", "push")
    with pytest.raises(AuthenticationFailed):
        github.verify(RawDelivery(headers=signed.headers, body=fx.flip_byte(signed.body)), CREDS)


def test_ping_is_ignored() -> None:
    (event,) = github.parse(fx.load("github", "ping"))
    assert event == Ignored(
        source="github",
        event="ping",
        reason="ping",
        delivery_id="72d3162e-cc78-11e3-81ab-4c9367dc0958",
    )


def test_other_events_are_signals() -> None:
    (event,) = github.parse(fx.load("github", "pull_request"))
    assert isinstance(event, Signal)


def test_malformed_push_body() -> None:
    with pytest.raises(MalformedPayload, match="GitHub push"):
        github.parse(fx.load("github", "push", body=b'{"ref": "refs/heads/main"}'))


def test_forced_push_has_no_changed_paths() -> None:
    payload = fx.load_json("github", "push")
    payload["forced"] = True
    assert _push(payload).changed_paths is None


def test_new_branch_has_no_changed_paths() -> None:
    payload = fx.load_json("github", "push")
    payload.update(before=ZERO, created=True)
    assert _push(payload).changed_paths is None


def test_capped_commit_list_has_no_changed_paths() -> None:
    payload = fx.load_json("github", "push")
    commits = payload["commits"]
    assert isinstance(commits, list)
    payload["commits"] = [copy.deepcopy(commits[0]) for _ in range(github.MAX_LISTED_COMMITS)]
    assert _push(payload).changed_paths is None


def test_commit_without_file_lists_has_no_changed_paths() -> None:
    payload = fx.load_json("github", "push")
    commits = payload["commits"]
    assert isinstance(commits, list)
    del commits[0]["added"]
    assert _push(payload).changed_paths is None


def test_deleted_tag() -> None:
    payload = fx.load_json("github", "push")
    payload.update(ref="refs/tags/v1.0.0", after=ZERO, deleted=True, commits=[], head_commit=None)
    push = _push(payload)
    assert (push.ref, push.deleted, push.after, push.changed_paths) == (
        "refs/tags/v1.0.0",
        True,
        None,
        None,
    )


def test_gitea_push_through_type_github() -> None:
    delivery = fx.load("gitea", "push")
    github.verify(delivery, fx.credentials("gitea"))
    (push,) = github.parse(delivery)
    assert isinstance(push, GitPush)
    assert push.source == "github"
    assert push.event == "push"
    assert push.repo_urls == (
        "https://git.example.com/platform/fleet-infra.git",
        "ssh://git@git.example.com:2222/platform/fleet-infra.git",
        "https://git.example.com/platform/fleet-infra",
    )
    assert push.ref == "refs/heads/main"
    assert push.after == "bffeb74224043ba2feb48d137756c8a9331c449a"
    assert push.changed_paths == frozenset({"apps/podinfo/hpa.yaml", "apps/podinfo/release.yaml"})
    assert push.delivery_id == "f6266f16-1bf3-46a5-9ea4-602e06ead473"


def test_gitea_capped_commit_list_through_type_github() -> None:
    payload = fx.load_json("gitea", "push")
    payload["total_commits"] = 12  # Gitea lists only the newest few
    delivery = fx.redelivered("gitea", "push", payload)
    (push,) = github.parse(delivery)
    assert isinstance(push, GitPush)
    assert push.changed_paths is None


def test_event_name_falls_back_to_gitea_header() -> None:
    delivery = RawDelivery(headers={"x-gitea-event": "push", "x-gitea-delivery": "d-1"}, body=b"")
    assert github.event_name(delivery) == "push"
    assert github.delivery_id(delivery) == "d-1"


def test_form_encoded_push_reads_the_payload_field() -> None:
    """`content_type: form` (GitHub's default): the signature covers the raw form body and
    the JSON document is its `payload` field, as go-github's ValidatePayload reads it."""
    document = fx.load("github", "push").body
    form = urlencode({"payload": document.decode()}).encode()
    delivery = fx.load("github", "push", body=form)
    delivery = RawDelivery(
        headers={**delivery.headers, "content-type": "application/x-www-form-urlencoded"},
        body=form,
    )
    github.verify(delivery, CREDS)
    assert github.parse(delivery) == (_push(),)


@pytest.mark.parametrize("form", [b"hook_id=1", b"payload=%ff%fe", "payload=é".encode()])
def test_form_encoded_body_without_a_usable_payload_field_is_malformed(form: bytes) -> None:
    delivery = fx.load("github", "push", body=form)
    delivery = RawDelivery(
        headers={**delivery.headers, "content-type": "application/x-www-form-urlencoded"},
        body=form,
    )
    github.verify(delivery, CREDS)
    with pytest.raises(MalformedPayload, match="payload"):
        github.parse(delivery)


def test_an_empty_token_still_requires_a_signature() -> None:
    """Flux (go-github) skips the check when the token is empty; gitops-receiver never does."""
    unsigned = RawDelivery(headers={"x-github-event": "push"}, body=b"{}")
    with pytest.raises(AuthenticationFailed, match="X-Hub-Signature-256 header missing"):
        github.verify(unsigned, Credentials(token=b""))
