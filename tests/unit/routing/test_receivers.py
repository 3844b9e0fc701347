"""Receiver table: Flux's webhook path, readiness, secret changes, status patches."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from receiver.expressions import Expression, compile_expression
from receiver.routing.hooks import webhook_path
from receiver.routing.receivers import (
    REASON_SUCCEEDED,
    REASON_TOKEN_NOT_FOUND,
    REASON_UNSUPPORTED_TYPE,
    ReceiverTable,
    ResourceRef,
    decode_secret_data,
    status_patch,
)

# Computed outside the code: printf '%s' 'my-secret-tokengithub-receiverflux-system' | sha256sum
GITHUB_VECTOR = "/hook/b98f6fa126a4936421e51cbe8ee7c22481738ddb1577528b32605d686770913b"
# GitLab's agent: empty token. printf '%s' 'gitlab-fleetteam-a' | sha256sum
AGENT_VECTOR = "/hook/d5cee287e29df0eca766d5081cafe48f0364560059bbc832001387c146797f18"

SUPPORTED = frozenset({"github", "gitlab", "generic"})


def secret(namespace: str, name: str, token: bytes | None) -> dict[str, Any]:
    data = {} if token is None else {"token": base64.b64encode(token).decode()}
    return {"metadata": {"namespace": namespace, "name": name}, "data": data}


def receiver(
    namespace: str = "flux-system",
    name: str = "github-receiver",
    *,
    type_name: str = "github",
    secret_name: str = "token",
    generation: int = 1,
    status: dict[str, Any] | None = None,
    **spec: Any,
) -> dict[str, Any]:
    return {
        "metadata": {"namespace": namespace, "name": name, "generation": generation},
        "spec": {"type": type_name, "secretRef": {"name": secret_name}, **spec},
        "status": status or {},
    }


def test_webhook_path_matches_independent_vectors() -> None:
    assert (
        webhook_path(token=b"my-secret-token", name="github-receiver", namespace="flux-system")
        == GITHUB_VECTOR
    )
    assert webhook_path(token=b"", name="gitlab-fleet", namespace="team-a") == AGENT_VECTOR


def test_receiver_is_reachable_at_flux_path_once_its_secret_arrives() -> None:
    table = ReceiverTable(supported_types=SUPPORTED)
    table.apply_receiver("ADDED", receiver())
    entry = table.entry(("flux-system", "github-receiver"))
    assert entry is not None and not entry.ready and entry.reason == REASON_TOKEN_NOT_FOUND
    assert "not found" in entry.message
    assert table.lookup(GITHUB_VECTOR) is None

    affected = table.apply_secret("ADDED", secret("flux-system", "token", b"my-secret-token"))
    assert affected == [("flux-system", "github-receiver")]
    found = table.lookup(GITHUB_VECTOR)
    assert found is not None and found.ready and found.reason == REASON_SUCCEEDED


def test_secret_rotation_moves_the_path_and_deletion_removes_it() -> None:
    table = ReceiverTable(supported_types=SUPPORTED)
    table.apply_secret("ADDED", secret("flux-system", "token", b"my-secret-token"))
    table.apply_receiver("ADDED", receiver())
    table.apply_secret("MODIFIED", secret("flux-system", "token", b"rotated"))
    assert table.lookup(GITHUB_VECTOR) is None
    assert table.lookup(
        webhook_path(token=b"rotated", name="github-receiver", namespace="flux-system")
    )
    table.apply_receiver("DELETED", receiver())
    assert len(table) == 0


def test_secret_without_token_key_is_not_ready_with_reason() -> None:
    table = ReceiverTable(supported_types=SUPPORTED)
    table.apply_secret("ADDED", secret("flux-system", "token", None))
    table.apply_receiver("ADDED", receiver())
    entry = table.entry(("flux-system", "github-receiver"))
    assert entry is not None and not entry.ready
    assert entry.reason == REASON_TOKEN_NOT_FOUND and "no 'token' key" in entry.message


def test_empty_token_is_valid_for_gitlab_agent_receivers() -> None:
    table = ReceiverTable(supported_types=SUPPORTED)
    table.apply_secret("ADDED", secret("team-a", "gitlab-receiver-fleet", b""))
    table.apply_receiver(
        "ADDED",
        receiver(
            "team-a", "gitlab-fleet", type_name="generic", secret_name="gitlab-receiver-fleet"
        ),
    )
    entry = table.lookup(AGENT_VECTOR)
    assert entry is not None and entry.ready and entry.token == b""


def test_unsupported_type_keeps_path_but_is_not_ready() -> None:
    table = ReceiverTable(supported_types=SUPPORTED)
    table.apply_secret("ADDED", secret("flux-system", "token", b"my-secret-token"))
    table.apply_receiver("ADDED", receiver(type_name="quay-like"))
    entry = table.lookup(GITHUB_VECTOR)
    assert entry is not None and not entry.ready and entry.reason == REASON_UNSUPPORTED_TYPE


def test_resources_default_to_receiver_namespace_and_keep_selectors() -> None:
    table = ReceiverTable(supported_types=SUPPORTED)
    table.apply_receiver(
        "ADDED",
        receiver(
            resources=[
                {"kind": "GitRepository", "name": "fleet"},
                {
                    "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
                    "kind": "Kustomization",
                    "name": "apps",
                    "namespace": "apps",
                },
                {"kind": "HelmRepository", "name": "*", "matchLabels": {"tier": "b", "app": "a"}},
                {"kind": "Bucket"},
            ]
        ),
    )
    entry = table.entry(("flux-system", "github-receiver"))
    assert entry is not None
    assert entry.resources == (
        ResourceRef("GitRepository", "fleet", "flux-system"),
        ResourceRef("Kustomization", "apps", "apps", "kustomize.toolkit.fluxcd.io/v1"),
        ResourceRef("HelmRepository", "*", "flux-system", None, (("app", "a"), ("tier", "b"))),
    )


def test_decode_secret_data_reads_data_and_string_data_and_skips_bad_base64() -> None:
    decoded = decode_secret_data(
        {"data": {"token": base64.b64encode(b"t").decode(), "bad": "!!!"}, "stringData": {"x": "y"}}
    )
    assert decoded == {"token": b"t", "x": b"y"}


def test_status_patch_is_none_once_status_matches_and_keeps_transition_time() -> None:
    table = ReceiverTable(supported_types=SUPPORTED)
    table.apply_secret("ADDED", secret("flux-system", "token", b"my-secret-token"))
    table.apply_receiver("ADDED", receiver(generation=3))
    entry = table.entry(("flux-system", "github-receiver"))
    assert entry is not None
    patch = status_patch(entry, now="2026-11-26T10:00:00Z")
    assert patch is not None
    status = patch["status"]
    assert status["webhookPath"] == GITHUB_VECTOR and status["observedGeneration"] == 3
    (ready,) = status["conditions"]
    assert ready["type"] == "Ready" and ready["status"] == "True"
    assert ready["lastTransitionTime"] == "2026-11-26T10:00:00Z"

    table.apply_receiver("MODIFIED", receiver(generation=3, status=status))
    settled = table.entry(("flux-system", "github-receiver"))
    assert settled is not None
    assert status_patch(settled, now="2026-11-26T11:00:00Z") is None

    table.apply_receiver("MODIFIED", receiver(generation=4, status=status))
    bumped = table.entry(("flux-system", "github-receiver"))
    assert bumped is not None
    again = status_patch(bumped, now="2026-11-26T12:00:00Z")
    assert again is not None
    assert again["status"]["conditions"][0]["lastTransitionTime"] == "2026-11-26T10:00:00Z"


@pytest.mark.parametrize(
    ("token", "expected_status", "expected_path"),
    [(None, "False", None), (b"my-secret-token", "True", GITHUB_VECTOR)],
)
def test_status_patch_reports_readiness(
    token: bytes | None, expected_status: str, expected_path: str | None
) -> None:
    table = ReceiverTable(supported_types=SUPPORTED)
    if token is not None:
        table.apply_secret("ADDED", secret("flux-system", "token", token))
    table.apply_receiver(
        "ADDED", receiver(status={"conditions": [{"type": "Other", "status": "True"}]})
    )
    entry = table.entry(("flux-system", "github-receiver"))
    assert entry is not None
    patch = status_patch(entry, now="2026-11-26T10:00:00Z")
    assert patch is not None
    conditions = patch["status"]["conditions"]
    assert conditions[0] == {"type": "Other", "status": "True"}
    assert conditions[1]["status"] == expected_status
    assert patch["status"]["webhookPath"] == expected_path


def test_status_patch_echoes_reconcile_request_for_flux_reconcile_receiver() -> None:
    """`flux reconcile receiver` sets requestedAt and waits for lastHandledReconcileAt."""
    table = ReceiverTable(supported_types=SUPPORTED)
    table.apply_secret("ADDED", secret("flux-system", "token", b"my-secret-token"))
    table.apply_receiver("ADDED", receiver())
    settled_status = status_patch(
        table.entry(("flux-system", "github-receiver")),  # type: ignore[arg-type]
        now="2026-11-26T10:00:00Z",
    )
    assert settled_status is not None
    assert "lastHandledReconcileAt" not in settled_status["status"]
    requested = receiver(status=settled_status["status"])
    requested["metadata"]["annotations"] = {
        "reconcile.fluxcd.io/requestedAt": "2026-11-26T10:05:00.123456789Z"
    }
    table.apply_receiver("MODIFIED", requested)
    entry = table.entry(("flux-system", "github-receiver"))
    assert entry is not None
    patch = status_patch(entry, now="2026-11-26T10:05:01Z")
    assert patch is not None
    assert patch["status"]["lastHandledReconcileAt"] == "2026-11-26T10:05:00.123456789Z"
    # Written once: the same request is not answered twice.
    handled = receiver(status=patch["status"])
    handled["metadata"]["annotations"] = requested["metadata"]["annotations"]
    table.apply_receiver("MODIFIED", handled)
    again = table.entry(("flux-system", "github-receiver"))
    assert again is not None
    assert status_patch(again, now="2026-11-26T10:06:00Z") is None


def test_status_patch_leaves_a_suspended_receiver_untouched() -> None:
    """notification-controller returns before touching a suspended Receiver's status."""
    table = ReceiverTable(supported_types=SUPPORTED)
    table.apply_secret("ADDED", secret("flux-system", "token", b"my-secret-token"))
    table.apply_receiver("ADDED", receiver(suspend=True))
    entry = table.entry(("flux-system", "github-receiver"))
    assert entry is not None and entry.suspended
    assert status_patch(entry, now="2026-11-26T10:00:00Z") is None


def _compiling_table() -> tuple[ReceiverTable, list[str]]:
    compiled: list[str] = []

    def compile_counted(source: str, *, variables: tuple[str, ...]) -> Expression:
        compiled.append(source)
        return compile_expression(source, variables=variables)

    return ReceiverTable(supported_types=SUPPORTED, compile=compile_counted), compiled


def test_filters_are_compiled_once_per_generation() -> None:
    table, compiled = _compiling_table()
    table.apply_secret("ADDED", secret("flux-system", "token", b"my-secret-token"))
    resources = [{"kind": "GitRepository", "name": "*", "filter": "res.metadata.name != 'x'"}]
    spec = {"resourceFilter": "req.ref == 'refs/heads/main'", "resources": resources}
    table.apply_receiver("ADDED", receiver(**spec))
    table.apply_receiver("MODIFIED", receiver(status={"webhookPath": "x"}, **spec))
    table.apply_secret("MODIFIED", secret("flux-system", "token", b"rotated"))
    entry = table.entry(("flux-system", "github-receiver"))
    assert entry is not None and entry.ready and entry.filters is not None
    assert len(compiled) == 2  # the top-level filter and the one per-resource filter, once
    table.apply_receiver("MODIFIED", receiver(generation=2, **spec))
    assert len(compiled) == 4


@pytest.mark.parametrize(
    ("spec", "problem"),
    [
        ({"resourceFilter": "req.ref =="}, "invalid resourceFilter expression"),
        ({"resourceFilter": "claims.sub == 'x'"}, "undeclared reference to 'claims'"),
        (
            {"resources": [{"kind": "GitRepository", "name": "a", "filter": "nope("}]},
            "invalid filter expression for resources[0] (kind='GitRepository', name='a')",
        ),
    ],
    ids=["syntax", "claims-outside-oidc", "per-resource"],
)
def test_an_invalid_filter_makes_the_receiver_not_ready_like_flux(
    spec: dict[str, Any], problem: str
) -> None:
    table, _ = _compiling_table()
    table.apply_secret("ADDED", secret("flux-system", "token", b"my-secret-token"))
    table.apply_receiver("ADDED", receiver(**spec))
    entry = table.entry(("flux-system", "github-receiver"))
    assert entry is not None and not entry.ready
    assert entry.reason == "InvalidCELExpression"
    assert entry.message.startswith("Reconciliation failed terminally due to configuration error: ")
    assert problem in entry.message


def test_a_terminal_failure_is_also_stalled_and_the_condition_goes_once_fixed() -> None:
    table, _ = _compiling_table()
    table.apply_secret("ADDED", secret("flux-system", "token", b"my-secret-token"))
    table.apply_receiver("ADDED", receiver(resourceFilter="req.ref =="))
    entry = table.entry(("flux-system", "github-receiver"))
    assert entry is not None
    patch = status_patch(entry, now="2026-11-26T10:00:00Z")
    assert patch is not None
    ready, stalled = patch["status"]["conditions"]
    assert (ready["type"], ready["status"], ready["reason"]) == (
        "Ready",
        "False",
        "InvalidCELExpression",
    )
    assert (stalled["type"], stalled["status"], stalled["reason"]) == (
        "Stalled",
        "True",
        "InvalidCELExpression",
    )
    table.apply_receiver("MODIFIED", receiver(resourceFilter="req.ref ==", status=patch["status"]))
    settled = table.entry(("flux-system", "github-receiver"))
    assert settled is not None and status_patch(settled, now="2026-11-26T10:01:00Z") is None
    fixed = receiver(generation=2, resourceFilter="req.ref == 'x'", status=patch["status"])
    table.apply_receiver("MODIFIED", fixed)
    entry = table.entry(("flux-system", "github-receiver"))
    assert entry is not None
    again = status_patch(entry, now="2026-11-26T10:02:00Z")
    assert again is not None
    assert [c["type"] for c in again["status"]["conditions"]] == ["Ready"]
