"""The route index: normalised repository URL -> GitRepository records, and push -> targets.

Pure: no I/O, no clock. The watch edge (routing/records.py builds the records) calls upsert and
remove; the pipeline calls route. A lookup costs one dict probe per URL the push names, so it
does not grow with the number of objects. Records are small (slots, shared strings, shared
RefSpec values): the budget is 1 KiB per object, dict overhead included.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from receiver.events import GitPush, ObjectRef
from receiver.routing import paths, refs, urls
from receiver.routing.refs import RefSpec
from receiver.routing.urls import NormalizedUrl


@dataclass(frozen=True, slots=True)
class GitRepoRecord:
    """What routing needs to know about one GitRepository, and nothing more."""

    ref: ObjectRef
    url: str
    normalized_url: NormalizedUrl | None  # None: spec.url names no repository we can match
    ref_spec: RefSpec
    suspended: bool
    path_filters: tuple[str, ...]  # () = no filtering
    labels: tuple[tuple[str, str], ...]  # sorted (key, value) pairs


class SkipCause(StrEnum):
    SUSPENDED = "suspended"
    REF = "ref"
    PATH = "path"
    SELECTOR = "selector"  # excluded by the configured label selector (explain only)
    FILTER = "filter"  # refused by a Receiver's CEL filter (resourceFilter, resources[].filter)


@dataclass(frozen=True, slots=True)
class Skip:
    """An object of the pushed repository that is not reconciled, and why."""

    ref: ObjectRef
    cause: SkipCause
    reason: str


@dataclass(frozen=True, slots=True)
class Hit:
    """An object the push reconciles, and why (for explain and debug logs)."""

    ref: ObjectRef
    reason: str


@dataclass(frozen=True, slots=True)
class RouteResult:
    targets: tuple[ObjectRef, ...]
    skipped: tuple[Skip, ...]
    hits: tuple[Hit, ...]
    repo_urls: tuple[NormalizedUrl, ...]  # the push's URLs as looked up


class RouteIndex:
    """GitRepository records by object and by normalised URL; not thread-safe (one loop)."""

    def __init__(self) -> None:
        self._records: dict[ObjectRef, GitRepoRecord] = {}
        # A repository with one object (the common case) holds the record itself, not a
        # one-entry dict: that halves the memory of such objects.
        self._buckets: dict[NormalizedUrl, GitRepoRecord | dict[ObjectRef, GitRepoRecord]] = {}

    def __len__(self) -> int:
        return len(self._records)

    def get(self, ref: ObjectRef) -> GitRepoRecord | None:
        return self._records.get(ref)

    def upsert(self, record: GitRepoRecord) -> None:
        """Add or replace the record of `record.ref` (its URL may have changed)."""
        self.remove(record.ref)
        self._records[record.ref] = record
        key = record.normalized_url
        if key is None:
            return
        bucket = self._buckets.get(key)
        if bucket is None:
            self._buckets[key] = record
        elif isinstance(bucket, GitRepoRecord):
            self._buckets[key] = {bucket.ref: bucket, record.ref: record}
        else:
            bucket[record.ref] = record

    def remove(self, ref: ObjectRef) -> GitRepoRecord | None:
        """Forget an object; returns its record, or None when it was not indexed."""
        old = self._records.pop(ref, None)
        if old is None or old.normalized_url is None:
            return old
        key = old.normalized_url
        bucket = self._buckets.get(key)
        if isinstance(bucket, GitRepoRecord):
            del self._buckets[key]
        elif bucket is not None:
            bucket.pop(ref, None)
            if len(bucket) == 1:
                self._buckets[key] = next(iter(bucket.values()))
        return old

    def _collect(self, keys: Iterable[NormalizedUrl]) -> dict[ObjectRef, GitRepoRecord]:
        found: dict[ObjectRef, GitRepoRecord] = {}
        for key in keys:
            bucket = self._buckets.get(key)
            if isinstance(bucket, GitRepoRecord):
                found[bucket.ref] = bucket
            elif bucket is not None:
                found.update(bucket)
        return found

    def records_for(self, repo_urls: Iterable[str]) -> tuple[GitRepoRecord, ...]:
        """Every record whose URL equals one of `repo_urls`, each once, sorted by object."""
        found = self._collect(urls.normalize_all(list(repo_urls)))
        return tuple(found[ref] for ref in sorted(found))

    def route(self, push: GitPush) -> RouteResult:
        """The objects `push` should reconcile, and for every other object of the same
        repository the reason it is left alone (suspended, ref, changed paths)."""
        keys = urls.normalize_all(list(push.repo_urls))
        records = self._collect(keys)
        hits: list[Hit] = []
        skipped: list[Skip] = []
        for ref in sorted(records):
            decision = decide(records[ref], push)
            if isinstance(decision, Hit):
                hits.append(decision)
            else:
                skipped.append(decision)
        return RouteResult(
            targets=tuple(hit.ref for hit in hits),
            skipped=tuple(skipped),
            hits=tuple(hits),
            repo_urls=keys,
        )


def decide(record: GitRepoRecord, push: GitPush) -> Hit | Skip:
    """One object against one push: suspended first, then the ref, then changed paths."""
    if record.suspended:
        return Skip(record.ref, SkipCause.SUSPENDED, "suspended")
    match = refs.match_ref(
        record.ref_spec,
        pushed_ref=push.ref,
        default_branch=push.default_branch,
        deleted=push.deleted,
    )
    if not match.matched:
        return Skip(record.ref, SkipCause.REF, match.reason)
    if not paths.paths_affected(record.path_filters, push.changed_paths):
        return Skip(
            record.ref,
            SkipCause.PATH,
            f"no changed path under {paths.describe(record.path_filters)}",
        )
    return Hit(record.ref, match.reason)


SourceKey = tuple[str, str, str]  # (kind, namespace, name) of a Flux source


@dataclass(frozen=True, slots=True)
class DownstreamRecord:
    """A Kustomization or HelmRelease and the source it reads (namespace already defaulted)."""

    ref: ObjectRef
    source: SourceKey | None  # None: no usable sourceRef


class DownstreamIndex:
    """Source -> the Kustomizations and HelmReleases that read it (issue 4, point 5).

    Keyed by kind, namespace and name, not apiVersion: a sourceRef may omit its apiVersion
    or name an older one, and it still means the same object.
    """

    def __init__(self) -> None:
        self._records: dict[ObjectRef, DownstreamRecord] = {}
        self._by_source: dict[SourceKey, set[ObjectRef]] = {}

    def __len__(self) -> int:
        return len(self._records)

    def upsert(self, record: DownstreamRecord) -> None:
        self.remove(record.ref)
        self._records[record.ref] = record
        if record.source is not None:
            self._by_source.setdefault(record.source, set()).add(record.ref)

    def remove(self, ref: ObjectRef) -> DownstreamRecord | None:
        old = self._records.pop(ref, None)
        if old is not None and old.source is not None:
            readers = self._by_source.get(old.source)
            if readers is not None:
                readers.discard(ref)
                if not readers:
                    del self._by_source[old.source]
        return old

    def downstream_of(self, source: ObjectRef) -> tuple[ObjectRef, ...]:
        """The objects reading `source`, sorted; () when none."""
        readers = self._by_source.get((source.kind, source.namespace, source.name))
        return tuple(sorted(readers)) if readers else ()
