"""The journey of a pushed commit through Flux, as the statuses to post on the forge.

Pure state machine: no I/O, no clock; order comes from a counter, corrected by each push's
`before` (a webhook for the parent that arrives after its child's is still the older commit).
The webhook pipeline (and the poller, for a push whose webhook was lost) calls
`requested` when a push triggered Flux objects; the Kustomization/HelmRelease watch calls
`observed` with `flux.observe(obj)`; the GitRepository watch may call `source_moved`. Each
returns the `StatusUpdate`s to hand to the reporter, in order. Per (object, commit) it keeps
what was last posted, so a periodic reconcile of an applied commit posts nothing, and every
open commit older than a newly applied one is marked superseded. Memory is bounded.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from receiver.events import ObjectRef
from receiver.status import flux
from receiver.status.model import CommitState, ForgeTarget, StatusNaming, StatusUpdate

REQUESTED_DESCRIPTION: Final = "Reconciliation requested"
SHORT_SHA_CHARS: Final = 8


@dataclass(slots=True)
class _Commit:
    sha: str
    seq: float
    ref: str | None
    target: ForgeTarget
    before: str | None = None
    posted: tuple[CommitState, str] | None = None
    request_id: str | None = None


@dataclass(slots=True)
class _Applied:
    sha: str
    seq: float


class Journey:
    """Tracks, per Flux object, the commits it was asked to reconcile and what was posted."""

    def __init__(
        self,
        *,
        naming: StatusNaming,
        max_objects: int = 10_000,
        max_commits_per_object: int = 20,
    ) -> None:
        self._naming = naming
        self._max_objects = max_objects
        self._max_commits = max_commits_per_object
        self._seq = 0
        self._commits: OrderedDict[ObjectRef, dict[str, _Commit]] = OrderedDict()
        self._targets: dict[ObjectRef, ForgeTarget] = {}
        self._applied: dict[ObjectRef, _Applied] = {}
        self._seen: dict[ObjectRef, dict[str, float]] = {}

    def requested(
        self,
        *,
        sha: str,
        target: ForgeTarget,
        objects: Iterable[ObjectRef],
        ref: str | None = None,
        request_id: str | None = None,
        before: str | None = None,
    ) -> list[StatusUpdate]:
        """A push of `sha` asked these objects to reconcile: `pending` for each.

        Nothing is posted for an object already pending or running on that commit, nor for a
        request already seen (`request_id`: the same delivery learnt twice, from the push and
        from the annotation its patch left); a commit asked for again by another request after
        a final state (a new push of a reverted commit) starts a new journey.
        `before` is where the push moved the ref from. A commit that a known push started
        from is older than that push whenever its own webhook arrives, so it is ordered just
        before it, and marked superseded at once when that newer commit is already applied.
        """
        sha = sha.lower()
        before = before.lower() if before else None
        updates: list[StatusUpdate] = []
        for obj in objects:
            self._targets[obj] = target
            commits = self._object(obj)
            commit = self._find(commits, sha)
            if commit is None:
                commit = _Commit(
                    sha=sha, seq=0, ref=ref, target=target, request_id=request_id, before=before
                )
                commits[sha] = commit
                self._bound(commits)
            elif request_id is not None and commit.request_id == request_id:
                continue
            elif commit.posted is not None and not commit.posted[0].is_final:
                commit.request_id = request_id or commit.request_id
                continue
            else:
                commit.posted = None
                commit.target = target
                commit.ref = ref or commit.ref
                commit.request_id = request_id
                commit.before = before or commit.before
            commit.seq = self._arrival_seq(obj, commits, commit)
            updates.extend(self._post(obj, commit, CommitState.PENDING, REQUESTED_DESCRIPTION))
            applied = self._applied.get(obj)
            if applied is not None and commit.seq < applied.seq:
                updates.extend(self._supersede(obj, flux.Revision(sha=applied.sha)))
        return updates

    def source_moved(self, *, objects: Iterable[ObjectRef], revision: flux.Revision) -> None:
        """A GitRepository now serves `revision`: note when its downstream objects first heard
        of it, so supersession orders it right even if no webhook announced it."""
        for obj in objects:
            commits = self._commits.get(obj)
            if commits is not None and self._find(commits, revision.sha) is not None:
                continue
            seen = self._seen.setdefault(obj, {})
            if not any(revision.matches(sha) for sha in seen):
                seen[revision.sha] = self._next_seq()
                while len(seen) > self._max_commits:
                    del seen[next(iter(seen))]

    def observed(
        self, observation: flux.Observation, *, target: ForgeTarget | None = None
    ) -> list[StatusUpdate]:
        """An object's status changed: the update for its commit, then any supersessions.

        Only commits this journey tracks get statuses (those a push asked for), so a restart
        does not re-post the current state of every object. `target` overrides the forge
        location learnt from the push.
        """
        obj = observation.obj
        if target is not None:
            self._targets[obj] = target
        updates: list[StatusUpdate] = []
        commits = self._commits.get(obj)
        if commits is not None and observation.revision is not None:
            commit = self._find(commits, observation.revision.sha)
            if commit is not None:
                updates.extend(self._post(obj, commit, observation.state, observation.description))
        if observation.applied is not None:
            updates.extend(self._supersede(obj, observation.applied))
        return updates

    def forget(self, obj: ObjectRef) -> None:
        """The object was deleted: drop what is known about it."""
        self._commits.pop(obj, None)
        self._targets.pop(obj, None)
        self._applied.pop(obj, None)
        self._seen.pop(obj, None)

    def open_commits(self, obj: ObjectRef) -> list[str]:
        """The commits still pending or running for `obj`, oldest first (for inspection)."""
        commits = self._commits.get(obj, {})
        return [
            commit.sha
            for commit in sorted(commits.values(), key=lambda commit: commit.seq)
            if commit.posted is not None and not commit.posted[0].is_final
        ]

    # -- internals -------------------------------------------------------------------------

    def _arrival_seq(self, obj: ObjectRef, commits: dict[str, _Commit], commit: _Commit) -> float:
        """A new sequence number, or, when a known push started from this commit (its
        `before`), a number just below the oldest such push and above everything older."""
        children = [
            other.seq
            for other in commits.values()
            if other is not commit and other.before and flux.same_commit(other.before, commit.sha)
        ]
        if not children:
            return self._next_seq()
        child = min(children)
        known = [other.seq for other in commits.values() if other is not commit]
        known += self._seen.get(obj, {}).values()
        older = max((seq for seq in known if seq < child), default=child - 1)
        return (older + child) / 2

    def _supersede(self, obj: ObjectRef, applied: flux.Revision) -> list[StatusUpdate]:
        known = self._applied.get(obj)
        if known is None or not applied.matches(known.sha):
            known = _Applied(sha=applied.sha, seq=self._seq_of(obj, applied))
            self._applied[obj] = known
        commits = self._commits.get(obj)
        if not commits:
            return []
        open_seqs = {
            sha: commit.seq
            for sha, commit in commits.items()
            if commit.posted is not None and not commit.posted[0].is_final
        }
        description = f"Superseded: Flux applied a newer revision ({applied.sha[:SHORT_SHA_CHARS]})"
        updates: list[StatusUpdate] = []
        for sha in flux.superseded_by(applied, applied_seq=known.seq, open_commits=open_seqs):
            updates.extend(self._post(obj, commits[sha], CommitState.SUPERSEDED, description))
        return updates

    def _seq_of(self, obj: ObjectRef, revision: flux.Revision) -> float:
        """When the journey first heard of `revision` for `obj`: its push, the source moving to
        it, or now (an applied commit nobody announced is newer than all that came before)."""
        commits = self._commits.get(obj)
        if commits is not None:
            commit = self._find(commits, revision.sha)
            if commit is not None:
                return commit.seq
        for sha, seq in self._seen.get(obj, {}).items():
            if revision.matches(sha):
                return seq
        return self._next_seq()

    def _post(
        self, obj: ObjectRef, commit: _Commit, state: CommitState, description: str
    ) -> list[StatusUpdate]:
        posted = commit.posted
        if posted is not None:
            if posted == (state, description):
                return []
            if not state.is_final and (posted[0].is_final or posted[0] == state):
                # A periodic reconcile of a settled commit, or a new message while running.
                return []
            if state is CommitState.PENDING and posted[0] is CommitState.RUNNING:
                return []
        commit.posted = (state, description)
        target = self._targets.get(obj, commit.target)
        return [
            StatusUpdate(
                forge_host=target.host,
                project=target.project,
                sha=commit.sha,
                name=self._naming.status_name(obj),
                state=state,
                description=description,
                target_url=self._naming.target_url(obj, sha=commit.sha),
                ref=commit.ref,
                namespace=obj.namespace,
            )
        ]

    def _object(self, obj: ObjectRef) -> dict[str, _Commit]:
        commits = self._commits.get(obj)
        if commits is None:
            commits = {}
            self._commits[obj] = commits
            while len(self._commits) > self._max_objects:
                evicted, _ = self._commits.popitem(last=False)
                self._targets.pop(evicted, None)
                self._applied.pop(evicted, None)
                self._seen.pop(evicted, None)
        else:
            self._commits.move_to_end(obj)
        return commits

    def _bound(self, commits: dict[str, _Commit]) -> None:
        """Keep at most `max_commits_per_object`: settled commits go first, oldest first."""
        while len(commits) > self._max_commits:
            ordered = sorted(commits.values(), key=lambda commit: commit.seq)
            settled = [c for c in ordered if c.posted is None or c.posted[0].is_final]
            victim = (settled or ordered)[0]
            del commits[victim.sha]

    @staticmethod
    def _find(commits: dict[str, _Commit], sha: str) -> _Commit | None:
        commit = commits.get(sha.lower())
        if commit is not None:
            return commit
        for candidate in commits.values():
            if flux.same_commit(candidate.sha, sha):
                return candidate
        return None

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq
