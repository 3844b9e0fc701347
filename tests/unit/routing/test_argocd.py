"""Argo CD matching, pure: the shared case table, then each rule's edges one by one."""

from __future__ import annotations

import pytest

from receiver.events import GitPush, ObjectRef
from receiver.routing import argocd
from receiver.routing.argocd_index import ArgoIndex
from receiver.routing.index import SkipCause
from tests.support.argocd_cases import CASES, Case, push


def routed(index: ArgoIndex, case: Case) -> tuple[ObjectRef, ...]:
    if isinstance(case.event, GitPush):
        return index.route(case.event).targets
    return index.route_image(case.event).targets


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_case_table(case: Case) -> None:
    record = argocd.record_from_object(case.manifest("apps"))
    assert record is not None
    index = ArgoIndex([record])
    assert (record.ref in routed(index, case)) is case.refresh


def test_table_has_at_least_25_cases_and_both_outcomes_per_rule() -> None:
    assert len(CASES) >= 25
    assert {case.refresh for case in CASES} == {True, False}


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        ("refs/heads/main", "main"),
        ("refs/heads/feature/x", "feature/x"),
        ("refs/tags/v1.0.0", "v1.0.0"),
        ("feature/x", "x"),
        ("main", "main"),
    ],
)
def test_parse_revision_as_argo_cd(ref: str, expected: str) -> None:
    assert argocd.parse_revision(ref) == expected


@pytest.mark.parametrize(
    ("annotation", "source_path", "expected"),
    [
        (None, "apps", ()),
        ("", "apps", ()),
        (".", "apps/web", ("apps/web",)),
        (".", "", ()),  # the repository root: every change
        ("/", "apps", ()),
        ("../shared", "apps/web", ("apps/shared",)),
        ("/common/; ./x ;;", "apps", ("common", "apps/x")),
        ("/a/../b", "apps", ("b",)),
    ],
)
def test_refresh_paths(annotation: str | None, source_path: str, expected: tuple[str, ...]) -> None:
    assert argocd.refresh_paths(annotation, source_path=source_path) == expected


@pytest.mark.parametrize(
    ("pattern", "name", "expected"),
    [
        ("/a/*.yaml", "/a/b.yaml", True),
        ("/a/*.yaml", "/a/b/c.yaml", False),
        ("/a/?.yaml", "/a/b.yaml", True),
        ("/a/[bc].yaml", "/a/c.yaml", True),
        ("/a/[^bc].yaml", "/a/c.yaml", False),
        ("/a/[a-c].yaml", "/a/b.yaml", True),
        ("/a/\\*.yaml", "/a/*.yaml", True),
        ("/a/\\*.yaml", "/a/b.yaml", False),
        ("/a/[", "/a/[", False),  # malformed: Go's ErrBadPattern, no match
        ("/a/b\\", "/a/b", False),
        ("/a.b", "/aXb", False),  # `.` is literal
    ],
)
def test_go_glob_match(pattern: str, name: str, expected: bool) -> None:
    assert argocd.go_glob_match(pattern, name) is expected


def test_files_changed_known_empty_list_concerns_no_filtered_source() -> None:
    assert argocd.files_changed(("apps",), frozenset()) is False
    assert argocd.files_changed((), frozenset()) is True
    assert argocd.files_changed(("apps",), None) is True


def test_skip_reasons_name_the_rule() -> None:
    record = argocd.record_from_object(CASES[2].manifest("apps"))  # HEAD, dev pushed
    assert isinstance(record, argocd.ApplicationRecord)
    result = ArgoIndex([record]).route(push("refs/heads/dev"))
    assert result.targets == ()
    (skip,) = result.skipped
    assert skip.cause is SkipCause.REF
    assert "follows main" in skip.reason


def test_index_forgets_removed_and_changed_objects() -> None:
    case = CASES[0]
    manifest = case.manifest("apps")
    record = argocd.record_from_object(manifest)
    assert record is not None
    index = ArgoIndex([record])
    moved = {**manifest, "spec": {**manifest["spec"], "source": {"repoURL": "https://x.example/y"}}}
    changed = argocd.record_from_object(moved)
    assert changed is not None
    index.upsert(changed)
    assert index.route(push()).targets == ()
    assert index.records_for(["https://x.example/y"]) == (changed,)
    assert index.remove(record.ref) == changed
    assert len(index) == 0 and index.records_for(["https://x.example/y"]) == ()


def test_refresh_patch_per_kind() -> None:
    annotations = argocd.refresh_patch("Application", hard=False)
    assert annotations == {"metadata": {"annotations": {"argocd.argoproj.io/refresh": "normal"}}}
    hard = argocd.refresh_patch("Application", hard=True)
    assert hard == {"metadata": {"annotations": {"argocd.argoproj.io/refresh": "hard"}}}
    assert argocd.refresh_patch("ApplicationSet", hard=True) == {
        "metadata": {"annotations": {"argocd.argoproj.io/application-set-refresh": "true"}}
    }
    assert argocd.refresh_patch("Kustomization", hard=False) is None


def test_objects_without_name_or_namespace_are_not_records() -> None:
    assert argocd.record_from_object({"kind": "Application", "metadata": {"name": "x"}}) is None
    assert argocd.record_from_object({"kind": "GitRepository", "metadata": {}}) is None


@pytest.mark.parametrize(
    "spec",
    [
        {"sources": 5, "source": {"repoURL": "https://github.com/example/fleet"}},
        {"sources": "abc", "source": {"repoURL": "https://github.com/example/fleet"}},
        {"sources": [None, 3], "source": {"repoURL": "https://github.com/example/fleet"}},
    ],
)
def test_mistyped_sources_never_raise(spec: dict[str, object]) -> None:
    """A hand-written inventory may hold anything; the record then falls back to `source`."""
    obj = {"kind": "Application", "metadata": {"name": "a", "namespace": "b"}, "spec": spec}
    record = argocd.record_from_object(obj)
    assert isinstance(record, argocd.ApplicationRecord)
    assert [s.repo_url for s in record.sources] == ["https://github.com/example/fleet"]


def test_mistyped_generators_never_raise() -> None:
    obj = {
        "kind": "ApplicationSet",
        "metadata": {"name": "a", "namespace": "b"},
        "spec": {"generators": [5, {"git": "x"}, {"matrix": {"generators": 7}}]},
    }
    record = argocd.record_from_object(obj)
    assert isinstance(record, argocd.ApplicationSetRecord)
    assert record.generators == () and record.every_push is False


HYDRATOR = {
    "sourceHydrator": {
        "drySource": {
            "repoURL": "https://github.com/example/fleet",
            "targetRevision": "main",
            "path": "dry",
        },
        "syncSource": {"targetBranch": "env/prod", "path": "prod"},
    }
}


@pytest.mark.parametrize(
    ("ref", "changed", "refreshed", "hydrated"),
    [
        ("refs/heads/main", {"dry/app.yaml"}, True, True),  # the dry source moved
        ("refs/heads/env/prod", {"prod/app.yaml"}, True, False),  # the hydrated branch moved
        ("refs/heads/main", {"docs/x.md"}, True, True),  # no annotation: every change
        ("refs/heads/dev", {"dry/app.yaml"}, False, False),
    ],
)
def test_source_hydrator_dry_source_asks_for_hydration(
    ref: str, changed: set[str], refreshed: bool, hydrated: bool
) -> None:
    obj = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application",
        "metadata": {"name": "h", "namespace": "argocd"},
        "spec": {"project": "default", **HYDRATOR},
    }
    record = argocd.record_from_object(obj)
    assert isinstance(record, argocd.ApplicationRecord) and record.hydrated
    index = ArgoIndex([record])
    event = push(ref, changed=frozenset(changed))
    targets = index.route(event).targets
    assert (record.ref in targets) is refreshed
    assert (index.hydrating(event, targets) == (record.ref,)) is hydrated


def test_hydrate_annotation_only_when_asked() -> None:
    patch = argocd.refresh_patch("Application", hard=False, hydrate=True)
    assert patch == {
        "metadata": {
            "annotations": {
                "argocd.argoproj.io/refresh": "normal",
                "argocd.argoproj.io/hydrate": "normal",
            }
        }
    }
    assert argocd.refresh_patch("ApplicationSet", hard=False, hydrate=True) == {
        "metadata": {"annotations": {"argocd.argoproj.io/application-set-refresh": "true"}}
    }
