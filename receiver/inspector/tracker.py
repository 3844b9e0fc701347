"""Joins the reconcile queue to the journal: each worker's take, patch outcome and selector
expansion settles the journal's candidates, and each patch that landed is announced (the app
turns that into a Kubernetes Event through `kube/recorder.py`).

Implements `trigger.worker.PatchObserver`. No I/O of its own: `announce` is injected.
"""

from __future__ import annotations

from collections.abc import Callable

from receiver.events import ObjectRef
from receiver.inspector.journal import Journal, ObjectKey, PatchState, describe_request
from receiver.objects.resources import Selector
from receiver.trigger.worker import PATCHED, Attempted, Target

Announce = Callable[[ObjectRef, str | None, str], None]  # target, uid, message


def object_key(target: Target) -> ObjectKey:
    """The journal's generic key: a selector's name is `*[labels]`."""
    if isinstance(target, Selector):
        labels = ",".join(f"{key}={value}" for key, value in target.match_labels)
        return ObjectKey(target.kind, target.namespace, f"*[{labels}]")
    return ObjectKey(target.kind, target.namespace, target.name)


class Tracker:
    def __init__(self, *, journal: Journal, announce: Announce | None = None) -> None:
        self.journal = journal
        self._announce = announce

    def patch_started(self, target: Target) -> None:
        self.journal.patch_started(object_key(target))

    def patch_finished(
        self, target: ObjectRef, *, result: Attempted[str | None], reason: str
    ) -> None:
        served = self.journal.patch_finished(
            object_key(target),
            state=PatchState(result.outcome),
            attempts=result.attempts,
            error=result.error,
        )
        if result.outcome == PATCHED and self._announce is not None:
            self._announce(target, result.value, describe_request(served, reason=reason))

    def selector_expanded(self, selector: Selector, *, result: Attempted[list[ObjectRef]]) -> None:
        key = object_key(selector)
        if result.outcome != PATCHED:
            self.journal.patch_finished(
                key, state=PatchState(result.outcome), attempts=result.attempts, error=result.error
            )
            return
        self.journal.selector_expanded(key, matched=[object_key(ref) for ref in result.value or ()])
