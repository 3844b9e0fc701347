"""Commits and states read from Argo CD Applications (receiver/status/argocd.py)."""

from __future__ import annotations

from typing import Any

import pytest

from receiver.events import ObjectRef
from receiver.status import argocd, scope
from receiver.status.model import CommitState

SHA_A = "a" * 40
SHA_B = "b" * 40


def application(status: dict[str, Any], *, kind: str = "Application") -> dict[str, Any]:
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": kind,
        "metadata": {"name": "web", "namespace": "argocd"},
        "status": status,
    }


SYNCED_A = {"status": "Synced", "revision": SHA_A}
HISTORY_B = [{"id": 3, "revision": SHA_B}]


@pytest.mark.parametrize(
    ("status", "state", "revision", "applied", "text"),
    [
        pytest.param(
            {"operationState": {"phase": "Running", "operation": {"sync": {"revision": SHA_A}}}},
            CommitState.RUNNING,
            SHA_A,
            None,
            "Argo CD is syncing",
            id="operation-running",
        ),
        pytest.param(
            {
                "operationState": {
                    "phase": "Failed",
                    "message": "one or more objects failed to apply",
                    "syncResult": {"revision": SHA_A},
                },
                "history": HISTORY_B,
            },
            CommitState.FAILURE,
            SHA_A,
            SHA_B,
            "one or more objects failed to apply",
            id="operation-failed",
        ),
        pytest.param(
            {
                "operationState": {"phase": "Succeeded", "syncResult": {"revision": SHA_A}},
                "sync": SYNCED_A,
                "health": {"status": "Healthy"},
                "history": [{"id": 1, "revision": SHA_B}, {"id": 2, "revision": SHA_A}],
            },
            CommitState.SUCCESS,
            SHA_A,
            SHA_A,
            "Argo CD synced: Healthy",
            id="synced-healthy",
        ),
        pytest.param(
            {"sync": SYNCED_A, "health": {"status": "Progressing"}, "history": HISTORY_B},
            CommitState.RUNNING,
            SHA_A,
            SHA_B,
            "Argo CD synced: Progressing",
            id="synced-progressing",
        ),
        pytest.param(
            {"sync": SYNCED_A, "health": {"status": "Degraded", "message": "CrashLoopBackOff"}},
            CommitState.FAILURE,
            SHA_A,
            None,
            "Argo CD synced: Degraded: CrashLoopBackOff",
            id="synced-degraded",
        ),
        pytest.param(
            {"sync": {"status": "OutOfSync", "revision": SHA_A}, "history": HISTORY_B},
            CommitState.RUNNING,
            SHA_A,
            SHA_B,
            "Argo CD found it out of sync: waiting for a sync",
            id="out-of-sync",
        ),
        pytest.param(
            {
                "sync": {"status": "Unknown", "revision": SHA_A},
                "conditions": [{"type": "ComparisonError", "message": "repo not found"}],
            },
            CommitState.FAILURE,
            SHA_A,
            None,
            "ComparisonError: repo not found",
            id="comparison-error",
        ),
        pytest.param(
            {"sync": {"status": "Synced", "revisions": ["1.2.3", SHA_A]}, "health": {}},
            CommitState.RUNNING,
            SHA_A,
            None,
            "Argo CD synced: Unknown",
            id="multi-source-first-commit",
        ),
    ],
)
def test_observe(
    status: dict[str, Any], state: CommitState, revision: str, applied: str | None, text: str
) -> None:
    observation = argocd.observe(application(status))
    assert observation is not None
    assert observation.state is state
    assert observation.revision is not None and observation.revision.sha == revision
    assert (observation.applied.sha if observation.applied else None) == applied
    assert observation.description == text


def test_other_kinds_are_not_observed() -> None:
    assert argocd.observe(application({"sync": SYNCED_A}, kind="ApplicationSet")) is None
    assert argocd.observe({"apiVersion": "x.io/v1", "kind": "Application"}) is None


def test_applications_are_status_keys() -> None:
    ref = ObjectRef("argoproj.io/v1alpha1", "Application", "argocd", "web")
    assert scope.status_ref(ref) == ref
    assert scope.status_ref(ObjectRef("", "Application", "argocd", "web")) == ref
