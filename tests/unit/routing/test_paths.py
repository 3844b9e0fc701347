"""The gitops-receiver.io/paths annotation and changed-path filtering by whole segments."""

from __future__ import annotations

import pytest

from receiver.routing.paths import normalize_path, parse_paths, paths_affected

PARSE = [
    ("none", None, ()),
    ("empty", "", ()),
    ("blank", "  \n ", ()),
    ("one", "apps", ("apps",)),
    ("comma", "clusters/prod,apps", ("clusters/prod", "apps")),
    ("comma-space", "clusters/prod, apps", ("clusters/prod", "apps")),
    ("newlines", "clusters/prod\napps\n", ("clusters/prod", "apps")),
    ("crlf", "apps\r\ninfra", ("apps", "infra")),
    ("dot-slash", "./apps", ("apps",)),
    ("leading-slash", "/apps/", ("apps",)),
    ("inner-double-slash", "apps//base", ("apps/base",)),
    ("empty-entries-dropped", "apps,,infra,", ("apps", "infra")),
    ("duplicates-dropped", "apps, ./apps/", ("apps",)),
    ("dot-means-all", "apps, .", ()),
    ("slash-means-all", "/", ()),
]


@pytest.mark.parametrize(("value", "expected"), [c[1:] for c in PARSE], ids=[c[0] for c in PARSE])
def test_parse_paths(value: str | None, expected: tuple[str, ...]) -> None:
    assert parse_paths(value) == expected


AFFECTED = [
    ("no-filter", (), {"anything"}, True),
    ("unknown-changes", ("apps",), None, True),
    ("inside", ("apps",), {"apps/x/y.yaml"}, True),
    ("the-dir-itself", ("apps",), {"apps"}, True),
    ("sibling-prefix", ("apps",), {"apps-legacy/x.yaml"}, False),
    ("outside", ("apps",), {"docs/readme.md"}, False),
    ("one-of-many-inside", ("apps",), {"docs/a.md", "apps/b.yaml"}, True),
    ("second-filter", ("clusters/prod", "apps"), {"clusters/prod/kustomization.yaml"}, True),
    ("other-cluster", ("clusters/prod",), {"clusters/staging/x.yaml"}, False),
    ("parent-of-filter", ("clusters/prod",), {"clusters/x.yaml"}, False),
    ("file-filter", ("flux/kustomization.yaml",), {"flux/kustomization.yaml"}, True),
    ("changed-with-dot-slash", ("apps",), {"./apps/x"}, True),
    ("empty-change-set", ("apps",), set(), False),
    ("case-matters", ("apps",), {"Apps/x"}, False),
]


@pytest.mark.parametrize(
    ("filters", "changed", "expected"), [c[1:] for c in AFFECTED], ids=[c[0] for c in AFFECTED]
)
def test_paths_affected(filters: tuple[str, ...], changed: set[str] | None, expected: bool) -> None:
    frozen = None if changed is None else frozenset(changed)
    assert paths_affected(filters, frozen) is expected


@pytest.mark.parametrize(
    ("path", "expected"), [("./a/b/", "a/b"), (".", ""), ("/", ""), ("a/./b", "a/b"), ("a", "a")]
)
def test_normalize_path(path: str, expected: str) -> None:
    assert normalize_path(path) == expected
