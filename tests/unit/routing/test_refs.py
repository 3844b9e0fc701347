"""match_ref: which pushes concern a GitRepository's spec.ref, with the reason explain shows."""

from __future__ import annotations

from typing import Any

import pytest

from receiver.routing.refs import RefSpec, match_ref

MAIN = "refs/heads/main"

CASES: list[tuple[str, dict[str, Any] | None, str, str | None, bool, bool, str]] = [
    # (id, spec.ref, pushed ref, default branch, deleted, matched, reason fragment)
    ("branch-exact", {"branch": "main"}, MAIN, "main", False, True, "branch main matches"),
    (
        "branch-other",
        {"branch": "main"},
        "refs/heads/dev",
        "main",
        False,
        False,
        "does not match pushed refs/heads/dev",
    ),
    (
        "branch-prefix-only",
        {"branch": "main"},
        "refs/heads/main-old",
        None,
        False,
        False,
        "does not match",
    ),
    (
        "branch-vs-tag-same-name",
        {"branch": "main"},
        "refs/tags/main",
        None,
        False,
        False,
        "does not match",
    ),
    (
        "branch-with-slash",
        {"branch": "release/1.x"},
        "refs/heads/release/1.x",
        None,
        False,
        True,
        "matches",
    ),
    ("branch-deleted", {"branch": "main"}, MAIN, "main", True, False, "was deleted"),
    ("branch-case-sensitive", {"branch": "Main"}, MAIN, None, False, False, "does not match"),
    ("tag-exact", {"tag": "v1.0.0"}, "refs/tags/v1.0.0", None, False, True, "tag v1.0.0 matches"),
    ("tag-other", {"tag": "v1.0.0"}, "refs/tags/v1.0.1", None, False, False, "does not match"),
    ("tag-vs-branch", {"tag": "v1.0.0"}, "refs/heads/v1.0.0", None, False, False, "does not match"),
    ("tag-deleted", {"tag": "v1.0.0"}, "refs/tags/v1.0.0", None, True, False, "was deleted"),
    ("tag-over-branch", {"branch": "main", "tag": "v1"}, MAIN, "main", False, False, "tag v1"),
    (
        "semver-satisfied",
        {"semver": ">=1.2.0 <2.0.0"},
        "refs/tags/v1.4.0",
        None,
        False,
        True,
        "satisfies",
    ),
    ("semver-no-v", {"semver": "^1.2.0"}, "refs/tags/1.9.9", None, False, True, "satisfies"),
    (
        "semver-outside",
        {"semver": "^1.2.0"},
        "refs/tags/v2.0.0",
        None,
        False,
        False,
        "does not satisfy",
    ),
    ("semver-tilde", {"semver": "~1.3.0"}, "refs/tags/v1.3.7", None, False, True, "satisfies"),
    (
        "semver-tilde-outside",
        {"semver": "~1.3.0"},
        "refs/tags/v1.4.0",
        None,
        False,
        False,
        "does not satisfy",
    ),
    (
        "semver-prerelease-skipped",
        {"semver": ">=1.0.0"},
        "refs/tags/v1.5.0-rc.1",
        None,
        False,
        False,
        "does not satisfy",
    ),
    (
        "semver-prerelease-asked",
        {"semver": ">=1.0.0-0"},
        "refs/tags/v1.5.0-rc.1",
        None,
        False,
        True,
        "satisfies",
    ),
    (
        "semver-not-a-version",
        {"semver": "*"},
        "refs/tags/latest",
        None,
        False,
        False,
        "not a semantic version",
    ),
    (
        "semver-loose-tag",
        {"semver": "*"},
        "refs/tags/v1.2",
        None,
        False,
        False,
        "not a semantic version",
    ),
    ("semver-branch-push", {"semver": "*"}, MAIN, "main", False, False, "needs a tag"),
    (
        "semver-bad-range",
        {"semver": ">= banana"},
        "refs/tags/v1.0.0",
        None,
        False,
        False,
        "invalid",
    ),
    ("semver-tag-deleted", {"semver": "^1"}, "refs/tags/v1.3.0", None, True, True, "resolve anew"),
    (
        "semver-over-branch",
        {"branch": "main", "semver": "^1"},
        MAIN,
        "main",
        False,
        False,
        "needs a tag",
    ),
    # fluxcd/pkg gogit Clone tests tag before semver: tag decides.
    (
        "tag-over-semver",
        {"tag": "v0.1.0", "semver": "^1"},
        "refs/tags/v1.2.0",
        None,
        False,
        False,
        "tag v0.1.0",
    ),
    (
        "name-branch",
        {"name": "refs/heads/main"},
        MAIN,
        "main",
        False,
        True,
        "name refs/heads/main matches",
    ),
    ("name-tag", {"name": "refs/tags/x"}, "refs/tags/x", None, False, True, "matches"),
    (
        "name-merge-request",
        {"name": "refs/merge-requests/1/head"},
        "refs/merge-requests/1/head",
        None,
        False,
        True,
        "matches",
    ),
    (
        "name-pull",
        {"name": "refs/pull/420/head"},
        "refs/pull/421/head",
        None,
        False,
        False,
        "does not match",
    ),
    (
        "name-over-semver",
        {"name": "refs/heads/main", "semver": "*"},
        MAIN,
        None,
        False,
        True,
        "name",
    ),
    ("name-short-does-not-match", {"name": "main"}, MAIN, "main", False, False, "does not match"),
    (
        "commit-never",
        {"commit": "0123456789abcdef0123456789abcdef01234567"},
        MAIN,
        "main",
        False,
        False,
        "pinned",
    ),
    (
        "commit-with-branch",
        {"branch": "main", "commit": "abc123"},
        MAIN,
        "main",
        False,
        False,
        "pinned",
    ),
    (
        "commit-over-name",
        {"name": "refs/heads/main", "commit": "abc123"},
        MAIN,
        None,
        False,
        False,
        "pinned",
    ),
    ("no-ref-master", None, "refs/heads/master", None, False, True, "default branch"),
    ("no-ref-event-default", None, MAIN, "main", False, True, "default branch"),
    ("no-ref-event-default-full", None, MAIN, "refs/heads/main", False, True, "default branch"),
    (
        "no-ref-other-branch",
        None,
        "refs/heads/dev",
        "main",
        False,
        False,
        "refs/heads/master or refs/heads/main",
    ),
    ("no-ref-main-unknown-default", None, MAIN, None, False, False, "follows refs/heads/master"),
    ("no-ref-tag", None, "refs/tags/v1.0.0", "main", False, False, "not pushed refs/tags/v1.0.0"),
    ("no-ref-deleted", None, MAIN, "main", True, False, "was deleted"),
    ("empty-ref-is-default", {}, "refs/heads/master", None, False, True, "default branch"),
    (
        "blank-fields-are-unset",
        {"branch": " ", "tag": ""},
        "refs/heads/master",
        None,
        False,
        True,
        "default",
    ),
]


@pytest.mark.parametrize(
    ("spec", "pushed", "default", "deleted", "matched", "reason"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_match_ref(
    spec: dict[str, Any] | None,
    pushed: str,
    default: str | None,
    deleted: bool,
    matched: bool,
    reason: str,
) -> None:
    result = match_ref(
        RefSpec.from_spec(spec), pushed_ref=pushed, default_branch=default, deleted=deleted
    )
    assert result.matched is matched
    assert reason in result.reason


def test_from_spec_ignores_non_strings_and_shares_the_empty_value() -> None:
    assert RefSpec.from_spec({"branch": 3, "tag": None}) == RefSpec()
    assert RefSpec.from_spec({"branch": 3}) is RefSpec.from_spec(None)


@pytest.mark.parametrize(
    ("spec", "described"),
    [
        (None, "default (master)"),
        ({"branch": "main"}, "branch main"),
        ({"branch": "main", "semver": "^1"}, "semver ^1"),
        ({"semver": "^1", "tag": "v1"}, "tag v1"),
        ({"commit": "abc", "name": "refs/heads/x"}, "commit abc"),
    ],
)
def test_describe_names_the_field_flux_acts_on(spec: dict[str, Any] | None, described: str) -> None:
    assert RefSpec.from_spec(spec).describe() == described
