"""Raw GitRepository, Kustomization and HelmRelease dicts -> routing records."""

from __future__ import annotations

from typing import Any

from receiver.events import ObjectRef
from receiver.routing import records
from receiver.routing.refs import RefSpec


def git_repository(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "source.toolkit.fluxcd.io/v1",
        "kind": "GitRepository",
        "metadata": {
            "name": "app",
            "namespace": "flux-system",
            "labels": {"team": "a", "env": "prod"},
            "annotations": {"gitops-receiver.io/paths": "clusters/prod, ./apps/"},
            "resourceVersion": "42",
        },
        "spec": {"interval": "5m", "url": "ssh://git@github.com/Org/App.git", **spec},
        "status": {"artifact": {"revision": "main@sha1:abc"}},
    }


def test_git_repository_record_carries_what_routing_needs() -> None:
    record = records.record_from_git_repository(git_repository(ref={"branch": "main"}))
    assert record.ref == ObjectRef(
        "source.toolkit.fluxcd.io/v1", "GitRepository", "flux-system", "app"
    )
    assert record.url == "ssh://git@github.com/Org/App.git"
    assert record.normalized_url == "github.com/org/app"
    assert record.ref_spec == RefSpec(branch="main")
    assert record.suspended is False
    assert record.path_filters == ("clusters/prod", "apps")
    assert record.labels == (("env", "prod"), ("team", "a"))


def test_suspend_and_missing_parts() -> None:
    record = records.record_from_git_repository(
        {"metadata": {"name": "x", "namespace": "ns"}, "spec": {"suspend": True}}
    )
    assert record.suspended is True
    assert record.normalized_url is None
    assert record.ref_spec == RefSpec()
    assert record.path_filters == () and record.labels == ()
    assert record.ref.kind == "GitRepository"


def test_mistyped_fields_do_not_raise() -> None:
    record = records.record_from_git_repository(
        {"metadata": "nope", "spec": {"url": 7, "ref": "main", "suspend": "yes"}}
    )
    assert record.normalized_url is None and record.suspended is False
    assert record.ref_spec == RefSpec()


def test_equal_ref_specs_and_namespaces_are_shared() -> None:
    first = records.record_from_git_repository(git_repository(ref={"branch": "main"}))
    second = records.record_from_git_repository(git_repository(ref={"branch": "main"}))
    assert first.ref_spec is second.ref_spec
    assert first.ref.namespace is second.ref.namespace


def test_kustomization_source_defaults_to_own_namespace() -> None:
    record = records.record_from_kustomization(
        {
            "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
            "kind": "Kustomization",
            "metadata": {"name": "apps", "namespace": "team-a"},
            "spec": {"sourceRef": {"kind": "GitRepository", "name": "app"}},
        }
    )
    assert record.ref == ObjectRef(
        "kustomize.toolkit.fluxcd.io/v1", "Kustomization", "team-a", "apps"
    )
    assert record.source == ("GitRepository", "team-a", "app")


def test_helmrelease_chart_spec_source_ref() -> None:
    record = records.record_from_helmrelease(
        {
            "apiVersion": "helm.toolkit.fluxcd.io/v2",
            "kind": "HelmRelease",
            "metadata": {"name": "web", "namespace": "team-a"},
            "spec": {
                "chart": {
                    "spec": {
                        "chart": "./charts/web",
                        "sourceRef": {
                            "kind": "GitRepository",
                            "name": "app",
                            "namespace": "flux-system",
                        },
                    }
                }
            },
        }
    )
    assert record.source == ("GitRepository", "flux-system", "app")


def test_helmrelease_chart_ref_wins() -> None:
    record = records.record_from_helmrelease(
        {
            "metadata": {"name": "web", "namespace": "team-a"},
            "spec": {
                "chartRef": {"kind": "OCIRepository", "name": "web-chart"},
                "chart": {"spec": {"sourceRef": {"kind": "GitRepository", "name": "app"}}},
            },
        }
    )
    assert record.ref.kind == "HelmRelease"
    assert record.source == ("OCIRepository", "team-a", "web-chart")


def test_missing_source_ref_gives_none() -> None:
    record = records.record_from_kustomization(
        {"metadata": {"name": "k", "namespace": "n"}, "spec": {}}
    )
    assert record.source is None
