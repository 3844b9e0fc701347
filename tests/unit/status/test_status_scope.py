"""Which pushes and Flux objects get commit statuses (scope.py): tables over raw values."""

from __future__ import annotations

from typing import Any

import pytest

from receiver.events import GitPush, ObjectRef
from receiver.status import scope

SHA = "ab12" * 10


def push(**fields: Any) -> GitPush:
    base: dict[str, Any] = {
        "source": "github",
        "event": "push",
        "repo_urls": ("https://github.com/acme/app.git",),
        "ref": "refs/heads/main",
        "after": SHA,
    }
    return GitPush(**{**base, **fields})


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({}, SHA),
        ({"after": SHA.upper()}, SHA),
        ({"after": None}, None),
        ({"after": "0" * 40, "deleted": True}, None),
        ({"deleted": True}, None),
        ({"after": "0" * 40}, None),
        ({"after": "abc1234"}, None),
        ({"after": "main"}, None),
    ],
    ids=["sha", "upper-case", "none", "deletion", "deleted-flag", "zero", "short", "not-hex"],
)
def test_pushed_commit(fields: dict[str, Any], expected: str | None) -> None:
    assert scope.pushed_commit(push(**fields)) == expected


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        (
            ObjectRef("kustomize.toolkit.fluxcd.io/v1", "Kustomization", "ns", "a"),
            ObjectRef("kustomize.toolkit.fluxcd.io/v1", "Kustomization", "ns", "a"),
        ),
        (
            ObjectRef("kustomize.toolkit.fluxcd.io/v1beta2", "Kustomization", "ns", "a"),
            ObjectRef("kustomize.toolkit.fluxcd.io/v1", "Kustomization", "ns", "a"),
        ),
        (
            ObjectRef("", "HelmRelease", "ns", "a"),
            ObjectRef("helm.toolkit.fluxcd.io/v2", "HelmRelease", "ns", "a"),
        ),
        (ObjectRef("source.toolkit.fluxcd.io/v1", "GitRepository", "ns", "a"), None),
        (ObjectRef("", "", "ns", "a"), None),
    ],
    ids=["kustomization-v1", "older-version", "no-api-version", "other-kind", "no-kind"],
)
def test_status_ref_is_one_key_per_object(ref: ObjectRef, expected: ObjectRef | None) -> None:
    assert scope.status_ref(ref) == expected


def release(spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "helm.toolkit.fluxcd.io/v2", "kind": "HelmRelease", "spec": spec}


def chart(**chart_spec: Any) -> dict[str, Any]:
    return {"chart": {"spec": {"chart": "./charts/app", **chart_spec}}}


GIT = {"kind": "GitRepository", "name": "fleet"}


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (chart(sourceRef=GIT, reconcileStrategy="Revision"), True),
        (chart(sourceRef=GIT), False),
        (chart(sourceRef=GIT, reconcileStrategy="ChartVersion"), False),
        (chart(sourceRef={"kind": "Bucket", "name": "b"}, reconcileStrategy="Revision"), False),
        (chart(sourceRef={"kind": "HelmRepository", "name": "r"}), False),
        ({"chartRef": {"kind": "OCIRepository", "name": "app"}}, False),
        (
            {"chartRef": {"kind": "HelmChart", "name": "app"}, **chart(sourceRef=GIT)},
            False,
        ),
        ({}, False),
        ({"chart": "not a mapping"}, False),
    ],
    ids=[
        "git-revision",
        "git-default-chartversion",
        "git-chartversion",
        "bucket-revision",
        "helm-repository",
        "chartref-oci",
        "chartref-wins",
        "no-spec",
        "junk",
    ],
)
def test_names_commits_only_for_git_charts_with_revision_strategy(
    spec: dict[str, Any], expected: bool
) -> None:
    assert scope.names_commits(release(spec)) is expected
