"""Commits and states read from Flux objects (receiver/status/flux.py)."""

from __future__ import annotations

from typing import Any

import pytest

from receiver.status import flux
from receiver.status.model import CommitState

SHA_A = "a" * 40
SHA_B = "b" * 40
SHA_C = "0123456789abcdef0123456789abcdef01234567"


def kustomization(
    *,
    ready: str | None,
    reason: str = "ReconciliationSucceeded",
    message: str = "",
    attempted: str = "",
    applied: str = "",
    reconciling: bool = False,
    generation: int = 1,
    observed: int = 1,
) -> dict[str, Any]:
    conditions: list[dict[str, Any]] = []
    if ready is not None:
        conditions.append({"type": "Ready", "status": ready, "reason": reason, "message": message})
    if reconciling:
        conditions.append(
            {"type": "Reconciling", "status": "True", "reason": "Progressing", "message": message}
        )
    return {
        "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
        "kind": "Kustomization",
        "metadata": {"name": "apps", "namespace": "flux-system", "generation": generation},
        "status": {
            "observedGeneration": observed,
            "conditions": conditions,
            "lastAttemptedRevision": attempted,
            "lastAppliedRevision": applied,
        },
    }


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (f"main@sha1:{SHA_A}", flux.Revision(SHA_A, "main")),
        (f"refs/heads/feat/x@sha1:{SHA_A}", flux.Revision(SHA_A, "refs/heads/feat/x")),
        (f"sha1:{SHA_B}", flux.Revision(SHA_B)),
        (f"main/{SHA_C}", flux.Revision(SHA_C, "main")),
        (f"feature/x/{SHA_C}", flux.Revision(SHA_C, "feature/x")),
        (SHA_C, flux.Revision(SHA_C)),
        ("6.5.1+0123456789ab", flux.Revision("0123456789ab")),
        (f"6.5.1+{SHA_C}", flux.Revision(SHA_C)),
        ("6.5.1", None),
        ("1.0.0+20240101", None),
        ("latest@sha256:" + "c" * 64, None),
        ("", None),
        (None, None),
    ],
    ids=[
        "ref-at-sha1",
        "full-ref",
        "sha1-only",
        "old-form",
        "old-form-slashed-branch",
        "bare",
        "chart-version-12",
        "chart-version-40",
        "plain-chart-version",
        "build-metadata-date",
        "oci-digest",
        "empty",
        "none",
    ],
)
def test_parse_revision(value: object, expected: flux.Revision | None) -> None:
    assert flux.parse_revision(value) == expected


def test_abbreviated_sha_matches_full() -> None:
    assert flux.Revision("0123456789ab").matches(SHA_C)
    assert not flux.Revision("0123456789ab").matches(SHA_A)
    assert not flux.same_commit("012345", SHA_C), "under 7 characters is too ambiguous"


def test_ready_true_is_success_for_the_applied_revision() -> None:
    obs = flux.observe(
        kustomization(
            ready="True",
            message=f"Applied revision: main@sha1:{SHA_A}",
            attempted=f"main@sha1:{SHA_A}",
            applied=f"main@sha1:{SHA_A}",
        )
    )
    assert obs is not None
    assert obs.state is CommitState.SUCCESS
    assert obs.revision == flux.Revision(SHA_A, "main")
    assert obs.applied == flux.Revision(SHA_A, "main")
    assert obs.description == f"Applied revision: main@sha1:{SHA_A}"
    assert str(obs.obj) == "Kustomization/flux-system/apps"


def test_ready_false_is_failure_for_the_attempted_revision_with_the_message() -> None:
    obs = flux.observe(
        kustomization(
            ready="False",
            reason="BuildFailed",
            message="kustomize build failed: accumulating resources",
            attempted=f"main@sha1:{SHA_B}",
            applied=f"main@sha1:{SHA_A}",
        )
    )
    assert obs is not None
    assert (obs.state, obs.revision, obs.applied) == (
        CommitState.FAILURE,
        flux.Revision(SHA_B, "main"),
        flux.Revision(SHA_A, "main"),
    )
    assert obs.description == "kustomize build failed: accumulating resources"


def test_ready_false_beside_progressing_with_retry_is_failure() -> None:
    """What kustomize-controller v1.9.6 writes for a failed apply it will retry."""
    obj = kustomization(
        ready="False",
        reason="ReconciliationFailed",
        message='ConfigMap/ns/broken dry-run failed: data.x: Invalid value: "string"',
        attempted=f"main@sha1:{SHA_B}",
        applied=f"main@sha1:{SHA_A}",
    )
    obj["status"]["conditions"].append(
        {
            "type": "Reconciling",
            "status": "True",
            "reason": "ProgressingWithRetry",
            "message": f"Detecting drift for revision main@sha1:{SHA_B} with a timeout of 30s",
        }
    )
    obs = flux.observe(obj)
    assert obs is not None
    assert (obs.state, obs.revision) == (CommitState.FAILURE, flux.Revision(SHA_B, "main"))
    assert obs.description.startswith("ConfigMap/ns/broken dry-run failed")


def test_success_names_the_commit_of_the_ready_message_before_the_fields_catch_up() -> None:
    """Flux writes Ready=True "Applied revision: B" while lastAppliedRevision still says A."""
    obs = flux.observe(
        kustomization(
            ready="True",
            message=f"Applied revision: main@sha1:{SHA_B}",
            attempted=f"main@sha1:{SHA_A}",
            applied=f"main@sha1:{SHA_A}",
        )
    )
    assert obs is not None
    assert (obs.state, obs.revision, obs.applied) == (
        CommitState.SUCCESS,
        flux.Revision(SHA_B, "main"),
        flux.Revision(SHA_B, "main"),
    )


def test_fields_ahead_of_the_ready_message_keep_the_message_on_its_commit() -> None:
    """The other order: lastAppliedRevision already B, Ready still "Applied revision: A"."""
    obs = flux.observe(
        kustomization(
            ready="True",
            message=f"Applied revision: main@sha1:{SHA_A}",
            attempted=f"main@sha1:{SHA_B}",
            applied=f"main@sha1:{SHA_B}",
        )
    )
    assert obs is not None
    assert (obs.state, obs.revision) == (CommitState.SUCCESS, flux.Revision(SHA_A, "main"))
    assert obs.description == f"Applied revision: main@sha1:{SHA_A}"


def test_reconciling_is_running_on_the_revision_named_in_the_message() -> None:
    obs = flux.observe(
        kustomization(
            ready="Unknown",
            reason="Progressing",
            message=f"Fetching manifests for revision main@sha1:{SHA_B} with a timeout of 4m30s",
            attempted=f"main@sha1:{SHA_A}",
            applied=f"main@sha1:{SHA_A}",
            reconciling=True,
        )
    )
    assert obs is not None
    assert obs.state is CommitState.RUNNING
    assert obs.revision == flux.Revision(SHA_B, "main")
    assert obs.description.startswith("Flux is reconciling: Fetching manifests")


def test_ready_unknown_without_a_revision_in_the_message_uses_the_attempted_one() -> None:
    obs = flux.observe(
        kustomization(
            ready="Unknown", message="Reconciliation in progress", attempted=f"sha1:{SHA_B}"
        )
    )
    assert obs is not None
    assert (obs.state, obs.revision) == (CommitState.RUNNING, flux.Revision(SHA_B))


def test_unobserved_generation_is_running_even_when_ready() -> None:
    obs = flux.observe(
        kustomization(ready="True", applied=f"main@sha1:{SHA_A}", generation=3, observed=2)
    )
    assert obs is not None
    assert obs.state is CommitState.RUNNING


def test_dependency_not_ready_is_still_running() -> None:
    obs = flux.observe(
        kustomization(
            ready="False",
            reason="DependencyNotReady",
            message="dependency 'flux-system/infra' is not ready",
            attempted=f"main@sha1:{SHA_B}",
        )
    )
    assert obs is not None
    assert obs.state is CommitState.RUNNING
    assert obs.description == "Flux is waiting: dependency 'flux-system/infra' is not ready"


def test_oci_source_uses_the_origin_revision() -> None:
    obj = kustomization(ready="True", applied="latest@sha256:" + "c" * 64)
    obj["status"]["lastAppliedOriginRevision"] = f"main@sha1:{SHA_A}"
    obs = flux.observe(obj)
    assert obs is not None
    assert obs.applied == flux.Revision(SHA_A, "main")


def helmrelease(
    *, ready: str, message: str, attempted: str, history: list[dict[str, Any]]
) -> dict[str, Any]:
    return {
        "apiVersion": "helm.toolkit.fluxcd.io/v2",
        "kind": "HelmRelease",
        "metadata": {"name": "podinfo", "namespace": "apps", "generation": 1},
        "status": {
            "observedGeneration": 1,
            "conditions": [{"type": "Ready", "status": ready, "reason": "X", "message": message}],
            "lastAttemptedRevision": attempted,
            "history": history,
        },
    }


def test_helmrelease_reads_the_commit_from_the_chart_version() -> None:
    history = [
        {"version": 3, "status": "deployed", "chartVersion": "6.5.1+0123456789ab"},
        {"version": 2, "status": "superseded", "chartVersion": "6.5.1+" + "b" * 12},
    ]
    obs = flux.observe(
        helmrelease(
            ready="True",
            message="Helm upgrade succeeded for release apps/podinfo.v3",
            attempted="6.5.1+0123456789ab",
            history=history,
        )
    )
    assert obs is not None
    assert obs.state is CommitState.SUCCESS
    assert obs.applied == flux.Revision("0123456789ab")
    assert obs.revision is not None and obs.revision.matches(SHA_C)


def test_helmrelease_failure_names_the_attempted_chart_commit() -> None:
    obs = flux.observe(
        helmrelease(
            ready="False",
            message="Helm upgrade failed: context deadline exceeded",
            attempted="6.5.2+" + "d" * 12,
            history=[{"version": 3, "status": "deployed", "chartVersion": "6.5.1+0123456789ab"}],
        )
    )
    assert obs is not None
    assert (obs.state, obs.revision) == (CommitState.FAILURE, flux.Revision("d" * 12))
    assert obs.applied == flux.Revision("0123456789ab")


def test_other_kinds_are_not_observed() -> None:
    obj = kustomization(ready="True")
    obj["apiVersion"] = "source.toolkit.fluxcd.io/v1"
    obj["kind"] = "GitRepository"
    assert flux.observe(obj) is None


def test_source_revision_from_gitrepository_artifact() -> None:
    repo = {"status": {"artifact": {"revision": f"main@sha1:{SHA_A}", "digest": "sha256:x"}}}
    assert flux.source_revision(repo) == flux.Revision(SHA_A, "main")
    assert flux.source_revision({"status": {}}) is None


def test_superseded_by_takes_only_older_open_commits() -> None:
    open_commits = {SHA_A: 1, SHA_B: 5, "c" * 40: 2}
    superseded = flux.superseded_by(
        flux.Revision("c" * 40), applied_seq=3, open_commits=open_commits
    )
    assert superseded == [SHA_A], "B came after the applied commit; C is the applied one"
