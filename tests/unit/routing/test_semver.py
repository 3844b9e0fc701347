"""Masterminds/semver v3 behaviour as Flux relies on it: versions, ranges, prereleases, tags.

The range table follows the cases of Masterminds' own constraints_test.go, so a divergence from
what source-controller would decide shows up here.
"""

from __future__ import annotations

import pytest

from receiver.errors import ConstraintError, ReceiverError
from receiver.routing.semver import (
    Version,
    latest_matching,
    parse_constraint,
    parse_tag_version,
    parse_version,
)

RANGES = [
    # (constraint, version, matches)
    ("=2.0.0", "1.2.3", False),
    ("=2.0.0", "2.0.0", True),
    ("=2.0", "2.0.1", True),
    ("4.1", "4.1.0", True),
    ("!=4.1.0", "4.1.0", False),
    ("!=4.1.0", "4.1.1", True),
    ("!=4.1", "4.1.1", False),
    ("!=4.1", "5.1.0-alpha.1", False),
    ("!=4.1-alpha", "4.1.0", True),
    ("!=4.x", "4.1.0", False),
    ("!=4.1.x", "4.2.0", True),
    ("<11", "11.1.0", False),
    ("<1.1", "1.1.1", False),
    ("<1.x", "0.1.1", True),
    ("<1.1.x", "1.1.500", False),
    ("<=11", "11.2.3", True),
    ("<=1.1", "1.1.1", True),
    ("<=1.1", "1.2.3", False),
    ("<=2.x", "3.0.0", False),
    ("<=1.1-a", "0.1.0-alpha", True),
    (">1.1", "1.1.0", False),
    (">0", "0", False),
    (">0", "1", True),
    (">11", "11.1.0", False),
    (">11.1", "11.1.1", False),
    (">11.1", "11.2.1", True),
    (">0.0.0-0", "0.0.0-alpha", True),
    (">1.2.3-alpha.1", "1.3.3-alpha.2", True),
    (">=11.1", "11.0.2", False),
    (">=1.1", "4.1.0-beta", False),
    (">=0-0", "0.0.1-alpha", True),
    (">=0", "0.0.1-alpha", False),
    ("=>1.2", "1.2.0", True),
    ("=<1.2", "1.2.9", True),
    ("<0-z", "0.0.0-alpha", True),
    ("*", "4.5.6", True),
    ("*", "1.2.3-alpha.1", False),
    ("*-0", "1.2.3-alpha.1", True),
    ("2.*", "2.1.1", True),
    ("2.*", "3.4.5", False),
    ("1.2.x", "1.2.9", True),
    ("1.2.x", "1.3.0", False),
    ("1.2.X", "1.2.0", True),
    ("~1.2.3", "1.2.4", True),
    ("~1.2.3", "1.3.4", False),
    ("~1.2.3", "1.2.2", False),
    ("~1", "1.9.0", True),
    ("~1", "2.3.4", False),
    ("~>1.2", "1.2.7", True),
    ("~*", "2.1.1", True),
    ("~1.2.3-beta.2", "1.2.4-beta.2", True),
    ("~1.2.3-beta.2", "1.3.4-beta.2", False),
    ("~1.1", "1.1.1-alpha", False),
    ("~1.3.0", "1.3.9", True),
    ("^1.2.3", "1.8.9", True),
    ("^1.2.3", "2.0.0", False),
    ("^1.2.3", "1.2.1", False),
    ("^1.2.0", "1.2.1-alpha.1", False),
    ("^1.2.0-alpha.0", "1.2.1-alpha.1", True),
    ("^1.2.0-alpha.2", "1.2.0-alpha.1", False),
    ("^0.2.3", "0.2.5", True),
    ("^0.2.3", "0.3.0", False),
    ("^0.0.3", "0.0.4", False),
    ("^0.0", "0.0.3", True),
    ("^0.0", "0.1.4", False),
    ("^0", "0.9.3", True),
    ("^0", "1.1.4", False),
    ("^1.x", "1.1.1-beta1", False),
    ("^1.1.2-alpha", "1.2.1-beta1", True),
    (">=1.2.0 <2.0.0", "1.9.9", True),
    (">=1.2.0 <2.0.0", "2.0.0", False),
    (">1.1, <2", "1.2.1", True),
    (">1.1    <3", "4.3.2", False),
    (">=1.1, <2, !=1.2.3", "1.2.3", False),
    (">=1.1 <2 !=1.2.3 || > 3", "4.1.2", True),
    (">=1.1, <2, !=1.2.3 || > 3", "3.1.2", False),
    (">=1.1, <2, !=1.2.3 || >= 3", "3.0.0", True),
    ("1.2 - 1.4.5", "1.4.5", True),
    ("1.2 - 1.4.5", "1.4.6", False),
    ("1.2 - 1.4.5", "1.1.9", False),
    ("1.0.0 - 2.0.0 <=2.0.0", "1.5.0", True),
    ("1.1-3", "4.3.2", False),
    ("v1.2.3", "1.2.3", True),
    (">= v1.0.0", "2.0.0", True),
]


@pytest.mark.parametrize(
    ("constraint", "version", "expected"),
    RANGES,
    ids=[f"{c}~{v}" for c, v, _ in RANGES],
)
def test_range_matches_like_masterminds(constraint: str, version: str, expected: bool) -> None:
    parsed = parse_version(version)
    assert parsed is not None
    assert parse_constraint(constraint).matches(parsed) is expected


BAD_RANGES = [
    ("empty", ""),
    ("word", "foo"),
    ("word-after-op", ">= bar"),
    ("word-before", "BAR >= 1.2.3"),
    ("four-parts", "12.3.4.1234"),
    ("op-glued-to-previous", "12.3.34~ 1.2.3"),
    ("leading-zero-prerelease", ">=1.2.3-01"),
    ("dangling-or", ">=1.0.0 ||"),
    ("dangling-comma", ">=1.0.0,"),
    ("too-long", ">=1.0.0 " * 200),
]


@pytest.mark.parametrize("text", [c[1] for c in BAD_RANGES], ids=[c[0] for c in BAD_RANGES])
def test_bad_range_raises_constraint_error(text: str) -> None:
    with pytest.raises(ConstraintError) as caught:
        parse_constraint(text)
    assert isinstance(caught.value, ReceiverError)
    assert "semver" in str(caught.value)


@pytest.mark.parametrize(
    "text", ["12.3.34 ~1.2.3", "v2.3.5-20161202202307-sha.e8fc5e5", "3 - 4 || => 3.0, < 4"]
)
def test_unusual_but_valid_ranges_parse(text: str) -> None:
    assert parse_constraint(text).groups


VERSIONS = [
    ("plain", "1.2.3", Version(1, 2, 3, original="1.2.3")),
    ("v-prefix", "v1.2.3", Version(1, 2, 3, original="v1.2.3")),
    ("two-parts", "1.2", Version(1, 2, 0, original="1.2")),
    ("one-part", "1", Version(1, 0, 0, original="1")),
    (
        "prerelease-build",
        "1.2.3-beta.1+build.345",
        Version(1, 2, 3, "beta.1", "build.345", "1.2.3-beta.1+build.345"),
    ),
    ("leading-zero-major", "01.2.3", Version(1, 2, 3, original="01.2.3")),
]


@pytest.mark.parametrize(
    ("text", "expected"), [c[1:] for c in VERSIONS], ids=[c[0] for c in VERSIONS]
)
def test_parse_version_is_lenient_like_new_version(text: str, expected: Version) -> None:
    assert parse_version(text) == expected


@pytest.mark.parametrize(
    "text", ["", "v", "1.2.3.4", "1.2.3-", "1.2.3-01", "1.2.3-a..b", "x1.2.3", "1.2.3 "]
)
def test_parse_version_rejects_non_versions(text: str) -> None:
    assert parse_version(text) is None


@pytest.mark.parametrize(
    ("tag", "is_version"),
    [
        ("v1.2.3", True),
        ("1.2.3", True),
        ("1.2.3-rc.1+build.5", True),
        ("1.2", False),
        ("v1", False),
        ("V1.2.3", False),
        ("v01.2.3", False),
        ("release-1.2.3", False),
        ("vv1.2.3", False),
    ],
)
def test_tags_are_read_strictly_like_flux(tag: str, is_version: bool) -> None:
    assert (parse_tag_version(tag) is not None) is is_version


def test_string_argument_is_read_as_a_tag() -> None:
    constraint = parse_constraint("^1.0")
    assert constraint.matches("v1.4.0")
    assert not constraint.matches("v1.4")  # not a strict version: Flux would ignore the tag


def test_precedence_follows_the_spec() -> None:
    ordered = [
        "1.0.0-alpha",
        "1.0.0-alpha.1",
        "1.0.0-alpha.beta",
        "1.0.0-beta",
        "1.0.0-beta.2",
        "1.0.0-beta.11",
        "1.0.0-rc.1",
        "1.0.0",
        "1.0.1",
        "1.10.0",
    ]
    parsed = [parse_version(text) for text in ordered]
    assert all(v is not None for v in parsed)
    keys = [v.sort_key() for v in parsed if v is not None]
    assert keys == sorted(keys)
    assert len(set(keys)) == len(keys)


def test_build_metadata_does_not_change_precedence() -> None:
    left, right = parse_version("1.2.3+a"), parse_version("1.2.3+b")
    assert left is not None and right is not None
    assert left.compare(right) == 0


def test_latest_matching_picks_the_highest_satisfying_tag() -> None:
    tags = ["v1.2.0", "v1.10.0", "v1.9.3", "v2.0.0", "v1.11.0-rc.1", "latest", "v1.12"]
    assert latest_matching(parse_constraint("^1.2"), tags) == "v1.10.0"


def test_latest_matching_includes_prereleases_only_when_asked() -> None:
    tags = ["1.0.0", "1.1.0-rc.1"]
    assert latest_matching(parse_constraint(">=1.0.0"), tags) == "1.0.0"
    assert latest_matching(parse_constraint(">=1.0.0-0"), tags) == "1.1.0-rc.1"


def test_latest_matching_none_when_nothing_satisfies() -> None:
    assert latest_matching(parse_constraint(">=3"), ["v1.0.0", "v2.0.0"]) is None


def test_latest_matching_breaks_ties_without_depending_on_order() -> None:
    tags = ["1.2.3", "v1.2.3"]
    constraint = parse_constraint("1.2.3")
    assert latest_matching(constraint, tags) == latest_matching(constraint, list(reversed(tags)))
