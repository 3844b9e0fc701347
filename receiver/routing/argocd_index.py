"""The Argo CD index: repository key / OCI artifact -> Applications and ApplicationSets.

Pure: no I/O, no clock. The watch edge feeds it raw objects through `argocd.record_from_object`
(`upsert`/`remove`); discovery asks `route` for a Git push and `route_image` for a registry
push. A lookup probes one dict entry per key the push names (plus the ApplicationSets that
every push concerns), so it does not grow with the number of objects.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TypeVar

from receiver.events import GitPush, ImagePush, ObjectRef
from receiver.routing import argocd, images
from receiver.routing.argocd import ApplicationRecord, ApplicationSetRecord, ArgoRecord
from receiver.routing.images import ImageRoute, NormalizedImage
from receiver.routing.index import Hit, RouteResult, Skip
from receiver.routing.urls import NormalizedUrl

_K = TypeVar("_K")


class ArgoIndex:
    """Argo CD records by object, by repository key and by OCI artifact; one event loop."""

    def __init__(self, records: Iterable[ArgoRecord] = ()) -> None:
        self._records: dict[ObjectRef, ArgoRecord] = {}
        self._by_repo: dict[NormalizedUrl, set[ObjectRef]] = {}
        self._by_image: dict[NormalizedImage, set[ObjectRef]] = {}
        self._every_push: set[ObjectRef] = set()
        for record in records:
            self.upsert(record)

    def __len__(self) -> int:
        return len(self._records)

    def get(self, ref: ObjectRef) -> ArgoRecord | None:
        return self._records.get(ref)

    def upsert(self, record: ArgoRecord) -> None:
        """Add or replace what `record.ref` contributes (its sources may have changed)."""
        self.remove(record.ref)
        self._records[record.ref] = record
        for key in _repo_keys(record):
            self._by_repo.setdefault(key, set()).add(record.ref)
        if isinstance(record, ApplicationRecord):
            for image in {image for source in record.sources for image in source.images}:
                self._by_image.setdefault(image, set()).add(record.ref)
        elif record.every_push:
            self._every_push.add(record.ref)

    def remove(self, ref: ObjectRef) -> ArgoRecord | None:
        """Forget an object; returns its record, or None when it was not indexed."""
        old = self._records.pop(ref, None)
        if old is None:
            return None
        for key in _repo_keys(old):
            _discard(self._by_repo, key, ref)
        if isinstance(old, ApplicationRecord):
            for image in {image for source in old.sources for image in source.images}:
                _discard(self._by_image, image, ref)
        self._every_push.discard(ref)
        return old

    def records_for(self, repo_urls: Sequence[str]) -> tuple[ArgoRecord, ...]:
        """Every record a push to `repo_urls` is compared with, each once, sorted by object."""
        found = self._candidates(argocd.push_keys(repo_urls))
        return tuple(self._records[ref] for ref in sorted(found))

    def _candidates(self, keys: Sequence[NormalizedUrl]) -> set[ObjectRef]:
        found: set[ObjectRef] = set(self._every_push)
        for key in keys:
            found.update(self._by_repo.get(key, ()))
        return found

    def route(self, push: GitPush) -> RouteResult:
        """The Applications and ApplicationSets `push` refreshes, and why the others of the
        same repository are left alone (`repo_urls` holds the keys looked up)."""
        keys = argocd.push_keys(push.repo_urls)
        hits: list[Hit] = []
        skipped: list[Skip] = []
        for ref in sorted(self._candidates(keys)):
            record = self._records[ref]
            decision = (
                argocd.decide_application(record, push, keys=keys)
                if isinstance(record, ApplicationRecord)
                else argocd.decide_application_set(record, push, keys=keys)
            )
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

    def hydrating(
        self, push: GitPush | ImagePush, refs: Iterable[ObjectRef]
    ) -> tuple[ObjectRef, ...]:
        """Which of the refreshed `refs` also ask for hydration: source-hydrator Applications
        whose dry source the Git push moved, and every one a registry push refreshes (as Argo
        CD's handlers do)."""
        keys = argocd.push_keys(push.repo_urls) if isinstance(push, GitPush) else ()
        found: list[ObjectRef] = []
        for ref in refs:
            record = self._records.get(ref)
            if not isinstance(record, ApplicationRecord) or not record.hydrated:
                continue
            if isinstance(push, ImagePush) or argocd.hydrates(record, push, keys=keys):
                found.append(ref)
        return tuple(found)

    def route_image(self, push: ImagePush) -> ImageRoute:
        """The Applications a registry push refreshes (Helm chart and OCI sources)."""
        parsed = images.split_image_ref(push.repository)
        if parsed is None:
            return ImageRoute(image=None, reason=f"not an image reference: {push.repository!r}")
        tag = push.tag or parsed.tag
        hits: list[Hit] = []
        skipped: list[Skip] = []
        for ref in sorted(self._by_image.get(parsed.image, ())):
            record = self._records[ref]
            assert isinstance(record, ApplicationRecord)
            decision = argocd.decide_application_image(record, push, image=parsed.image, tag=tag)
            if isinstance(decision, Hit):
                hits.append(decision)
            else:
                skipped.append(decision)
        reason = None if hits or skipped else f"no Application names {parsed.image}"
        return ImageRoute(
            image=parsed.image,
            targets=tuple(hit.ref for hit in hits),
            skipped=tuple(skipped),
            hits=tuple(hits),
            reason=reason,
        )


def _repo_keys(record: ArgoRecord) -> set[NormalizedUrl]:
    if isinstance(record, ApplicationSetRecord):
        return {g.repo_key for g in record.generators if g.repo_key is not None}
    return {s.repo_key for s in record.sources if s.repo_key is not None}


def _discard(table: dict[_K, set[ObjectRef]], key: _K, ref: ObjectRef) -> None:
    bucket = table.get(key)
    if bucket is not None:
        bucket.discard(ref)
        if not bucket:
            del table[key]
