"""The requested commit, recorded on the GitRepository by the reconcile patch itself.

Whichever replica receives a push, its reconcile patch of each triggered GitRepository also
sets `gitops-receiver.io/requested-commit`: the commit, its ref, where its statuses go and a
request id (the delivery id). The API server is then the shared state: the leader learns the
request from its GitRepository watch, even when a follower received the push, and a restarted
process learns every recent request from its first list. No extra API call is made: the
annotation rides on the patch that asks Flux to reconcile.

Pure: no I/O, no clock.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from receiver.status.model import ForgeTarget

ANNOTATION: Final = "gitops-receiver.io/requested-commit"
MAX_VALUE_CHARS: Final = 2048


@dataclass(frozen=True, slots=True)
class RequestedCommit:
    """One push's request for statuses; `at_s` is when it was accepted (epoch seconds);
    `before` is where the push moved the ref from (it orders late webhooks), when known."""

    sha: str
    ref: str | None
    target: ForgeTarget
    request_id: str
    at_s: float
    before: str | None = None


def encode(request: RequestedCommit) -> str:
    value = {
        "sha": request.sha,
        "ref": request.ref,
        "host": request.target.host,
        "project": request.target.project,
        "id": request.request_id,
        "at": round(request.at_s, 3),
    }
    if request.before:
        value["before"] = request.before
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def decode(value: str) -> RequestedCommit | None:
    """The record, or None when the value is not one (edited by hand, truncated, too long)."""
    if len(value) > MAX_VALUE_CHARS:
        return None
    try:
        data = json.loads(value)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    sha, ref, host, project = (data.get(k) for k in ("sha", "ref", "host", "project"))
    request_id, at_s = data.get("id"), data.get("at")
    if not all(isinstance(v, str) and v for v in (sha, host, project, request_id)):
        return None
    if ref is not None and not isinstance(ref, str):
        return None
    if not isinstance(at_s, int | float) or isinstance(at_s, bool):
        return None
    before = data.get("before")
    return RequestedCommit(
        sha=str(sha).lower(),
        ref=ref,
        target=ForgeTarget(host=str(host), project=str(project)),
        request_id=str(request_id),
        at_s=float(at_s),
        before=before.lower() if isinstance(before, str) and before else None,
    )


def read(obj: Mapping[str, Any]) -> RequestedCommit | None:
    """The record on a GitRepository watch object, if any."""
    metadata = obj.get("metadata")
    annotations = metadata.get("annotations") if isinstance(metadata, Mapping) else None
    value = annotations.get(ANNOTATION) if isinstance(annotations, Mapping) else None
    return decode(value) if isinstance(value, str) else None
