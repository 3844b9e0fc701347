"""Reading Flux objects for commit statuses: which commit, and how it stands.

Pure: raw object dicts in (as the watch delivers them), values out; no I/O, no clock.
Kustomization (`kustomize.toolkit.fluxcd.io/v1`): `status.lastAttemptedRevision`,
`status.lastAppliedRevision` (`lastAppliedOriginRevision` first: for an OCI source it holds
the Git commit). HelmRelease (`helm.toolkit.fluxcd.io/v2`): `status.lastAttemptedRevision`
and the latest `status.history[]` snapshot's `chartVersion`, which carry a commit only for a
chart built from Git with `reconcileStrategy: Revision` (`1.2.3+<sha[:12]>`).
GitRepository: `status.artifact.revision`. Revisions: `<ref>@sha1:<sha>`, `sha1:<sha>`,
the older `<ref>/<sha>`, or a bare sha.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from receiver.events import ObjectRef
from receiver.objects import raw
from receiver.status.model import CommitState

MIN_SHA_CHARS: Final = 7
KUSTOMIZATION_GROUP: Final = "kustomize.toolkit.fluxcd.io"
HELMRELEASE_GROUP: Final = "helm.toolkit.fluxcd.io"
WATCHED_KINDS: Final = frozenset(
    {("Kustomization", KUSTOMIZATION_GROUP), ("HelmRelease", HELMRELEASE_GROUP)}
)

WAITING_REASONS: Final = frozenset({"DependencyNotReady"})
"""Ready=False reasons that mean "not yet", not "failed": the commit stays running."""

RETRY_REASON: Final = "ProgressingWithRetry"
"""The Reconciling reason Flux writes beside Ready=False: the attempt failed, a retry is due."""

_SHA1: Final = r"[0-9a-f]{40}"
_NEW_FORM: Final = re.compile(rf"^(?:(?P<ref>.+)@)?sha1:(?P<sha>{_SHA1})$")
_OLD_FORM: Final = re.compile(rf"^(?:(?P<ref>.+)/)?(?P<sha>{_SHA1})$")
_CHART_VERSION: Final = re.compile(r"^[^+\s]+\+(?P<sha>[0-9a-f]{12}|[0-9a-f]{40})$")
_IN_MESSAGE: Final = re.compile(rf"(?:(?P<ref>[^\s@'\"]+)@)?sha1:(?P<sha>{_SHA1})")


@dataclass(frozen=True, slots=True)
class Revision:
    """One Git commit as Flux names it. `sha` is lower-case hex, full or abbreviated (Helm)."""

    sha: str
    ref: str | None = None

    def matches(self, sha: str) -> bool:
        return same_commit(self.sha, sha)


@dataclass(frozen=True, slots=True)
class Observation:
    """How one Kustomization or HelmRelease stands now.

    `revision` is the commit `state` is about (None when the object names no Git commit);
    `applied` the last one Flux applied successfully, which drives supersession.
    """

    obj: ObjectRef
    state: CommitState
    revision: Revision | None
    applied: Revision | None
    description: str


def same_commit(a: str, b: str) -> bool:
    """Equal, or one an abbreviation (at least 7 characters) of the other."""
    a, b = a.lower(), b.lower()
    if min(len(a), len(b)) < MIN_SHA_CHARS:
        return False
    return a.startswith(b) or b.startswith(a)


def parse_revision(value: object) -> Revision | None:
    """A Flux revision string as a commit, or None (empty, an OCI digest, a plain version)."""
    if not isinstance(value, str) or not value:
        return None
    text = value.strip()
    for pattern in (_NEW_FORM, _OLD_FORM):
        found = pattern.match(text)
        if found is not None:
            return Revision(sha=found.group("sha"), ref=found.group("ref") or None)
    found = _CHART_VERSION.match(text)
    if found is not None:
        return Revision(sha=found.group("sha"))
    return None


def revision_in(message: str) -> Revision | None:
    """The first `[<ref>@]sha1:<sha>` inside a condition message ("Fetching manifests for
    revision main@sha1:…"): while reconciling, it names the commit before the status does."""
    found = _IN_MESSAGE.search(message)
    if found is None:
        return None
    return Revision(sha=found.group("sha"), ref=found.group("ref") or None)


def source_revision(obj: Mapping[str, Any]) -> Revision | None:
    """The commit a GitRepository's current artifact was built from."""
    artifact = raw.mapping(raw.mapping(obj.get("status")).get("artifact"))
    return parse_revision(artifact.get("revision"))


def observe(obj: Mapping[str, Any]) -> Observation | None:
    """The commit an object is working on or has applied, and its state, from its conditions.

    Reconciling=True/Progressing, Ready=Unknown or missing, or a spec not yet observed ->
    running; Ready=True -> success; Ready=False -> failure with the message, also beside
    Reconciling=True/ProgressingWithRetry (what kustomize-controller v1.9 writes for a failed
    attempt it will retry), except a waiting reason (`DependencyNotReady`): still running.
    The commit is the one the conditions name ("Applied revision: main@sha1:…", "Fetching
    manifests for revision …"), then the status fields: Flux writes the Ready condition and
    `lastAppliedRevision` in separate updates, so the fields may still name the previous commit
    while the condition already speaks of the new one. None for an object of another kind.
    """
    ref = raw.object_ref(obj)
    group = ref.api_version.partition("/")[0]
    if (ref.kind, group) not in WATCHED_KINDS:
        return None
    status = raw.mapping(obj.get("status"))
    conditions = _conditions(status)
    ready = conditions.get("Ready")
    reconciling = conditions.get("Reconciling")
    attempted, applied = _revisions(ref.kind, status)

    ready_status = ready.get("status") if ready else None
    retrying = reconciling is not None and reconciling.get("reason") == RETRY_REASON
    progressing = reconciling is not None and reconciling.get("status") == "True" and not retrying
    if ready is None or ready_status not in ("True", "False") or progressing or _stale(obj, status):
        message = _message(reconciling or ready)
        return Observation(
            obj=ref,
            state=CommitState.RUNNING,
            revision=revision_in(message) or attempted,
            applied=applied,
            description=f"Flux is reconciling: {message}" if message else "Flux is reconciling",
        )
    message = _message(ready)
    named = revision_in(message)
    if ready_status == "True":
        done = named or applied or attempted
        return Observation(
            obj=ref,
            state=CommitState.SUCCESS,
            revision=done,
            applied=named or applied,
            description=message or "Flux applied this revision",
        )
    tried = named or revision_in(_message(reconciling) if retrying else "") or attempted
    if ready.get("reason") in WAITING_REASONS:
        return Observation(
            obj=ref,
            state=CommitState.RUNNING,
            revision=tried,
            applied=applied,
            description=f"Flux is waiting: {message}" if message else "Flux is waiting",
        )
    return Observation(
        obj=ref,
        state=CommitState.FAILURE,
        revision=tried,
        applied=applied,
        description=message or f"Flux could not reconcile ({ready.get('reason', 'unknown')})",
    )


def superseded_by(
    applied: Revision, *, applied_seq: float, open_commits: Mapping[str, float]
) -> list[str]:
    """The still pending/running commits that `applied` supersedes for one object.

    `open_commits` maps each open sha to the order in which the journey first heard of it
    (push or observation); `applied_seq` is that order for the applied commit. Only commits
    heard of before it are superseded: a push that came later may still be on its way.
    """
    return sorted(
        (
            sha
            for sha, seq in open_commits.items()
            if seq < applied_seq and not applied.matches(sha)
        ),
        key=lambda sha: open_commits[sha],
    )


def _revisions(kind: str, status: Mapping[str, Any]) -> tuple[Revision | None, Revision | None]:
    attempted = parse_revision(status.get("lastAttemptedRevision"))
    if kind == "Kustomization":
        applied = parse_revision(status.get("lastAppliedOriginRevision")) or parse_revision(
            status.get("lastAppliedRevision")
        )
        return attempted, applied
    snapshots = [
        raw.mapping(item) for item in status.get("history") or () if isinstance(item, dict)
    ]
    deployed = [item for item in snapshots if item.get("status") == "deployed"]
    latest = max(deployed, key=lambda item: _int(item.get("version")), default=None)
    applied = parse_revision(latest.get("chartVersion")) if latest else None
    return attempted, applied or parse_revision(status.get("lastAppliedRevision"))


def _stale(obj: Mapping[str, Any], status: Mapping[str, Any]) -> bool:
    generation = raw.mapping(obj.get("metadata")).get("generation")
    observed = status.get("observedGeneration")
    if not isinstance(generation, int) or not isinstance(observed, int):
        return False
    return observed < generation


def _conditions(status: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    found: dict[str, Mapping[str, Any]] = {}
    for item in status.get("conditions") or ():
        if isinstance(item, dict) and isinstance(item.get("type"), str):
            found[item["type"]] = item
    return found


def _message(condition: Mapping[str, Any] | None) -> str:
    if condition is None:
        return ""
    return str(condition.get("message") or "").strip()


def _int(value: object) -> int:
    return value if isinstance(value, int) else -1
