"""What `gitops-receiver routes` prints: which objects a push reconciles, and why the others not.

Pure formatting: no I/O, no clock. The CLI builds the GitPush from its flags, asks
RouteIndex.route and records_for (and the Argo CD index, whose Applications and
ApplicationSets get rows too), and prints render_text or json.dumps(render_json(...)).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias

from receiver.events import GitPush, ObjectRef
from receiver.routing import paths
from receiver.routing.argocd import ArgoRecord
from receiver.routing.index import GitRepoRecord, RouteResult

RECONCILE = "reconcile"
SKIP = "skip"


@dataclass(frozen=True, slots=True)
class Row:
    object: str
    decision: str  # RECONCILE or SKIP
    cause: str  # "match", or a SkipCause value
    ref_spec: str
    paths: str
    reason: str


ExplainedRecord: TypeAlias = GitRepoRecord | ArgoRecord


def _columns(record: ExplainedRecord | None) -> tuple[str, str]:
    """(SPEC.REF, PATHS) of a row: a GitRepository's `spec.ref` and path filters, or an Argo
    CD object's `targetRevision`/generator `revision` and refresh paths."""
    if record is None:
        return "", "*"
    if isinstance(record, GitRepoRecord):
        filters = paths.describe(record.path_filters) if record.path_filters else "*"
        return record.ref_spec.describe(), filters
    return record.describe_revision(), record.describe_paths()


def explain_rows(result: RouteResult, *, records: Sequence[ExplainedRecord]) -> tuple[Row, ...]:
    """One row per object of the repository, targets first, each group sorted by object."""
    by_ref = {record.ref: record for record in records}

    def row(ref: ObjectRef, decision: str, cause: str, reason: str) -> Row:
        ref_spec, filters = _columns(by_ref.get(ref))
        return Row(
            object=str(ref),
            decision=decision,
            cause=cause,
            ref_spec=ref_spec,
            paths=filters,
            reason=reason,
        )

    hits = [row(hit.ref, RECONCILE, "match", hit.reason) for hit in result.hits]
    skips = [row(skip.ref, SKIP, skip.cause.value, skip.reason) for skip in result.skipped]
    return (*hits, *skips)


def render_json(
    result: RouteResult, *, push: GitPush, records: Sequence[ExplainedRecord]
) -> dict[str, Any]:
    """A JSON-able dict with the same content as render_text, for scripts."""
    changed = None if push.changed_paths is None else sorted(push.changed_paths)
    return {
        "push": {
            "repo_urls": list(push.repo_urls),
            "normalized_urls": list(result.repo_urls),
            "ref": push.ref,
            "default_branch": push.default_branch,
            "deleted": push.deleted,
            "changed_paths": changed,
        },
        "reconcile": [str(ref) for ref in result.targets],
        "objects": [
            {
                "object": row.object,
                "decision": row.decision,
                "cause": row.cause,
                "spec_ref": row.ref_spec,
                "paths": row.paths,
                "reason": row.reason,
            }
            for row in explain_rows(result, records=records)
        ],
    }


def render_text(result: RouteResult, *, push: GitPush, records: Sequence[ExplainedRecord]) -> str:
    """A header naming the push, then an aligned table; a line saying so when nothing matches."""
    if push.changed_paths is None:
        changed = "unknown (path filters never skip)"
    else:
        changed = f"{len(push.changed_paths)} path(s)"
    lines = [
        f"repository: {', '.join(result.repo_urls) or '(no usable URL)'}",
        f"ref:        {push.ref}{' (deleted)' if push.deleted else ''}",
        f"changed:    {changed}",
        f"reconcile:  {len(result.targets)} of {len(result.targets) + len(result.skipped)}",
        "",
    ]
    rows = explain_rows(result, records=records)
    if not rows:
        lines.append("no GitRepository or Argo CD object points at this repository")
        return "\n".join(lines) + "\n"
    header = ("OBJECT", "DECISION", "SPEC.REF", "PATHS", "REASON")
    table = [header, *((r.object, r.decision, r.ref_spec, r.paths, r.reason) for r in rows)]
    widths = [max(len(cells[i]) for cells in table) for i in range(len(header) - 1)]
    for cells in table:
        padded = [cell.ljust(width) for cell, width in zip(cells, widths, strict=False)]
        lines.append("  ".join([*padded, cells[-1]]).rstrip())
    return "\n".join(lines) + "\n"
