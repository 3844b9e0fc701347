"""Reading Argo CD Applications for commit statuses: which commit, and how it stands.

Pure: raw object dicts in (as the watch delivers them), `flux.Observation` out, so the journey
treats an Application like a Kustomization; no I/O, no clock. Read from `status`
(`argoproj.io/v1alpha1`, no status subresource): `operationState.phase` (Running, Terminating,
Succeeded, Failed, Error) with `operationState.syncResult.revision(s)` or
`operationState.operation.sync.revision(s)`; `sync.status` (Synced, OutOfSync, Unknown) with
`sync.revision(s)`; `health.status` (Healthy, Progressing, Degraded, Suspended, Missing,
Unknown); `conditions` (`*Error` types); and `history[]`, the successful syncs, whose last entry
is the applied commit. A multi-source Application reports its first Git commit.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from receiver.objects import raw
from receiver.status import flux
from receiver.status.flux import Observation, Revision
from receiver.status.model import CommitState

GROUP: Final = "argoproj.io"
APPLICATION: Final = "Application"
RUNNING_PHASES: Final = frozenset({"Running", "Terminating"})
FAILED_PHASES: Final = frozenset({"Failed", "Error"})
SUCCESS_HEALTH: Final = frozenset({"Healthy", "Suspended"})
FAILED_HEALTH: Final = frozenset({"Degraded"})


def observe(obj: Mapping[str, Any]) -> Observation | None:
    """How an Application stands for its commit; None for other kinds.

    A sync operation running -> running; failed or errored -> failure with its message. Else,
    synced: Healthy or Suspended -> success, Degraded -> failure, other health -> running
    (rolling out). Out of sync (a manual-sync Application, or auto-sync not started yet) ->
    running. Unknown with an error condition (`ComparisonError`…) -> failure.
    """
    ref = raw.object_ref(obj)
    if ref.kind != APPLICATION or ref.api_version.partition("/")[0] != GROUP:
        return None
    status = raw.mapping(obj.get("status"))
    operation = raw.mapping(status.get("operationState"))
    sync = raw.mapping(status.get("sync"))
    health = raw.mapping(status.get("health"))
    applied = _applied(status)
    phase = _text(operation.get("phase"))
    operation_revision = _revision(raw.mapping(operation.get("syncResult"))) or _revision(
        raw.mapping(raw.mapping(operation.get("operation")).get("sync"))
    )
    synced_revision = _revision(sync)
    message = _text(operation.get("message"))
    if phase in RUNNING_PHASES:
        return Observation(
            obj=ref,
            state=CommitState.RUNNING,
            revision=operation_revision or synced_revision,
            applied=applied,
            description=_described("Argo CD is syncing", message),
        )
    if phase in FAILED_PHASES:
        return Observation(
            obj=ref,
            state=CommitState.FAILURE,
            revision=operation_revision or synced_revision,
            applied=applied,
            description=message or f"Argo CD sync {phase.lower()}",
        )
    sync_status = _text(sync.get("status"))
    health_status = _text(health.get("status")) or "Unknown"
    health_message = _text(health.get("message"))
    if sync_status == "Synced":
        if health_status in SUCCESS_HEALTH:
            state, text = CommitState.SUCCESS, f"Argo CD synced: {health_status}"
        elif health_status in FAILED_HEALTH:
            state, text = (
                CommitState.FAILURE,
                _described("Argo CD synced: Degraded", health_message),
            )
        else:
            state, text = CommitState.RUNNING, f"Argo CD synced: {health_status}"
        return Observation(
            obj=ref,
            state=state,
            revision=synced_revision,
            applied=applied or (synced_revision if state is CommitState.SUCCESS else None),
            description=text,
        )
    error = _error_condition(status)
    if sync_status != "OutOfSync" and error is not None:
        return Observation(
            obj=ref,
            state=CommitState.FAILURE,
            revision=synced_revision,
            applied=applied,
            description=error,
        )
    return Observation(
        obj=ref,
        state=CommitState.RUNNING,
        revision=synced_revision,
        applied=applied,
        description="Argo CD found it out of sync: waiting for a sync"
        if sync_status == "OutOfSync"
        else "Argo CD is comparing",
    )


def _revision(section: Mapping[str, Any]) -> Revision | None:
    """The commit of `revision`, else the first commit among `revisions` (multi-source)."""
    found = flux.parse_revision(section.get("revision"))
    if found is not None:
        return found
    for value in section.get("revisions") or ():
        found = flux.parse_revision(value)
        if found is not None:
            return found
    return None


def _applied(status: Mapping[str, Any]) -> Revision | None:
    """The commit of the last successful sync: the last `history` entry (highest `id`)."""
    entries = [
        raw.mapping(item) for item in status.get("history") or () if isinstance(item, Mapping)
    ]
    if not entries:
        return None
    return _revision(max(entries, key=_history_id))


def _history_id(entry: Mapping[str, Any]) -> int:
    value = entry.get("id")
    return value if isinstance(value, int) else -1


def _error_condition(status: Mapping[str, Any]) -> str | None:
    for item in status.get("conditions") or ():
        condition = raw.mapping(item)
        kind = _text(condition.get("type"))
        if kind.endswith("Error"):
            return _described(kind, _text(condition.get("message")))
    return None


def _described(head: str, message: str) -> str:
    return f"{head}: {message}" if message else head


def _text(value: object) -> str:
    return raw.text(value).strip()
