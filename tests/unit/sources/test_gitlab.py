"""GitLab source: token check, push / tag push / system hook parsing, truncation and deletes."""

from __future__ import annotations

import pytest

from receiver.errors import AuthenticationFailed, MalformedPayload
from receiver.events import GitPush, Signal
from receiver.sources import gitlab
from tests.support import signed_fixtures as fx

CREDS = fx.credentials("gitlab")
ZERO = "0" * 40
URLS = (
    "https://gitlab.example.com/platform/fleet-infra.git",
    "git@gitlab.example.com:platform/fleet-infra.git",
    "https://gitlab.example.com/platform/fleet-infra",
)


def _parse(event: str, payload: dict[str, object] | None = None) -> GitPush:
    delivery = (
        fx.load("gitlab", event) if payload is None else fx.redelivered("gitlab", event, payload)
    )
    gitlab.verify(delivery, CREDS)
    (parsed,) = gitlab.parse(delivery)
    assert isinstance(parsed, GitPush)
    return parsed


def test_push_is_parsed_into_every_field() -> None:
    assert _parse("push") == GitPush(
        source="gitlab",
        event="Push Hook",
        repo_urls=URLS,
        ref="refs/heads/main",
        before="95790bf891e76fee5e1747ab589903a6a1f80f22",
        after="da1560886d4f094c3e6c9ef40349f7d38b5d27d7",
        deleted=False,
        default_branch="main",
        changed_paths=frozenset(
            {
                "infrastructure/monitoring/kustomization.yaml",
                "apps/podinfo/release.yaml",
                "apps/podinfo/old.yaml",
            }
        ),
        delivery_id="13792a34-cac6-4fda-95a8-c58e00a3954e",
        repo_name="platform/fleet-infra",
    )


def test_tag_push() -> None:
    push = _parse("tag_push")
    assert push.event == "Tag Push Hook"
    assert push.ref == "refs/tags/v1.4.0"
    assert push.after == "da1560886d4f094c3e6c9ef40349f7d38b5d27d7"  # checkout_sha: the commit
    assert push.deleted is False
    assert push.changed_paths is None


def test_system_hook_push() -> None:
    push = _parse("system_hook_push")
    assert (push.event, push.ref, push.repo_urls) == ("System Hook", "refs/heads/release-1.x", URLS)
    assert push.changed_paths == frozenset({"clusters/staging/values.yaml"})


def test_merge_request_is_a_signal() -> None:
    assert gitlab.parse(fx.load("gitlab", "merge_request")) == (
        Signal(
            source="gitlab",
            event="Merge Request Hook",
            delivery_id="13792a34-cac6-4fda-95a8-c58e00a3954e",
        ),
    )


def test_truncated_commit_list_has_no_changed_paths() -> None:
    payload = fx.load_json("gitlab", "push")
    payload["total_commits_count"] = 25  # GitLab lists at most 20 commits
    assert _parse("push", payload).changed_paths is None


def test_new_branch_has_no_changed_paths() -> None:
    payload = fx.load_json("gitlab", "push")
    payload["before"] = ZERO
    assert _parse("push", payload).changed_paths is None


def test_tag_delete() -> None:
    payload = fx.load_json("gitlab", "tag_push")
    payload.update(before="82b3d5ae55f7080f1e6022629cdb57bfae7cccc7", after=ZERO, checkout_sha=None)
    push = _parse("tag_push", payload)
    assert (push.deleted, push.after, push.ref) == (True, None, "refs/tags/v1.4.0")


@pytest.mark.parametrize(
    ("token", "message"),
    [
        (None, "X-Gitlab-Token header missing"),
        ("", "X-Gitlab-Token header missing"),
        ("fixture-secreT", "does not match"),
        ("fixture-secret\udcff", "does not match"),
    ],
    ids=["missing", "empty", "wrong", "undecodable-byte"],
)
def test_bad_tokens_fail(token: str | None, message: str) -> None:
    delivery = fx.without(fx.load("gitlab", "push"), "x-gitlab-token")
    if token is not None:
        delivery = fx.with_headers(delivery, x_gitlab_token=token)
    with pytest.raises(AuthenticationFailed, match=message) as caught:
        gitlab.verify(delivery, CREDS)
    assert "fixture-secret" not in caught.value.message


def test_push_hook_with_a_non_push_body_is_malformed() -> None:
    with pytest.raises(MalformedPayload):
        gitlab.parse(fx.load("gitlab", "push", body=b'{"object_kind": "note"}'))


def test_malformed_body() -> None:
    with pytest.raises(MalformedPayload):
        gitlab.parse(fx.load("gitlab", "merge_request", body=b"not json"))
    with pytest.raises(MalformedPayload, match="GitLab push"):
        gitlab.parse(
            fx.load("gitlab", "push", body=b'{"object_kind": "push", "ref": "refs/heads/x"}')
        )


def test_system_hook_push_named_by_event_name_only() -> None:
    """GitLab documents system-hook push and tag push bodies with `event_name` and no
    `object_kind`."""
    for event_name, ref in (("push", "refs/heads/release-1.x"), ("tag_push", "refs/tags/v2.0.0")):
        payload = fx.load_json("gitlab", "system_hook_push")
        payload.pop("object_kind", None)
        payload["event_name"] = event_name
        payload["ref"] = ref
        push = _parse("system_hook_push", payload)
        assert (push.event, push.ref, push.repo_urls) == ("System Hook", ref, URLS)
