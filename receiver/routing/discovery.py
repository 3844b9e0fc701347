"""Auto-discovery state: the indexes the `/webhooks/<forge>` endpoints route through.

Pure: fed raw objects from the watches (or the dry-run inventory) and parsed events from the
pipeline; no I/O. GitRepositories are keyed by normalised URL, image sources by normalised
image, Kustomizations/HelmReleases by the source they read, and Argo CD Applications and
ApplicationSets by the repositories and artifacts they name, so one lookup per URL finds
every affected object however many the cluster holds.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from receiver.events import Event, GitPush, ImagePush, ObjectRef
from receiver.objects import raw
from receiver.routing import argocd, images, records, selectors
from receiver.routing.argocd import ArgoRecord
from receiver.routing.argocd_index import ArgoIndex
from receiver.routing.index import (
    DownstreamIndex,
    DownstreamRecord,
    GitRepoRecord,
    RouteIndex,
    RouteResult,
    Skip,
    SkipCause,
)

GIT_ENDPOINTS = frozenset({"github", "gitlab", "gitea", "bitbucket", "azure-devops"})
# Endpoints whose payload names what was pushed; signal-only sources (generic-hmac, nexus,
# cdevents) cannot be routed and are refused at start-up.
IMAGE_ENDPOINTS = frozenset({"harbor", "dockerhub", "quay", "ghcr", "distribution", "acr", "gcr"})
ROUTABLE_ENDPOINTS = GIT_ENDPOINTS | IMAGE_ENDPOINTS | {"generic"}


@dataclass(frozen=True, slots=True)
class Routed:
    """What one event reconciles: the matched sources, what reads them, the Argo CD objects it
    refreshes, and the near misses."""

    sources: tuple[ObjectRef, ...] = ()
    downstream: tuple[ObjectRef, ...] = ()
    skipped: tuple[Skip, ...] = ()
    reason: str | None = None
    refreshed: tuple[ObjectRef, ...] = ()
    hydrate: tuple[ObjectRef, ...] = ()  # refreshed Applications whose refresh also hydrates

    @property
    def targets(self) -> tuple[ObjectRef, ...]:
        return (*self.sources, *self.downstream, *self.refreshed)

    @property
    def applications(self) -> tuple[ObjectRef, ...]:
        """The Argo CD Applications among the refreshed objects (they report commits)."""
        return tuple(ref for ref in self.refreshed if ref.kind == argocd.APPLICATION)


class Discovery:
    def __init__(self, *, with_downstream: bool) -> None:
        self.with_downstream = with_downstream
        self.git = RouteIndex()
        self.readers = DownstreamIndex()
        self.images = images.ImageIndex()
        self.argocd = ArgoIndex()
        # Source-hydrator Applications a routed push asked to hydrate, until their refresh
        # patch takes the request (`take_hydration`); a burst collapses into one.
        self._hydrations: set[ObjectRef] = set()

    def apply_git_repository(self, event: str, obj: Mapping[str, Any]) -> None:
        record = records.record_from_git_repository(obj)
        if event == raw.DELETED:
            self.git.remove(record.ref)
        else:
            self.git.upsert(record)

    def apply_reader(self, event: str, obj: Mapping[str, Any]) -> DownstreamRecord:
        """A Kustomization or HelmRelease changed; returns what it now reads."""
        record = (
            records.record_from_helmrelease(obj)
            if obj.get("kind") == "HelmRelease"
            or str(obj.get("apiVersion", "")).startswith("helm.")
            else records.record_from_kustomization(obj)
        )
        if event == raw.DELETED:
            self.readers.remove(record.ref)
        else:
            self.readers.upsert(record)
        return record

    def apply_image_source(self, event: str, obj: Mapping[str, Any]) -> None:
        """An ImageRepository, OCIRepository or OCI HelmRepository changed."""
        record = None if event == raw.DELETED else images.record_from_object(obj)
        if record is None:
            self.images.remove(raw.object_ref(obj))
        else:
            self.images.put(record)

    def apply_argocd(self, event: str, obj: Mapping[str, Any], *, kind: str) -> None:
        """An Argo CD Application or ApplicationSet (`kind`: the watched kind) changed."""
        record = None if event == raw.DELETED else argocd.record_from_object({**obj, "kind": kind})
        if record is None:
            ref = raw.object_ref(obj, default_api_version=argocd.API_VERSION)
            self.argocd.remove(replace(ref, kind=kind))
        else:
            self.argocd.upsert(record)

    def request_hydration(self, refs: tuple[ObjectRef, ...]) -> None:
        """Remember that the next refresh of these Applications also asks for hydration."""
        self._hydrations.update(refs)

    def take_hydration(self, ref: ObjectRef) -> bool:
        """Whether the refresh patch of `ref` being sent now must ask for hydration (once)."""
        if ref in self._hydrations:
            self._hydrations.discard(ref)
            return True
        return False

    def downstream_of(self, sources: tuple[ObjectRef, ...]) -> tuple[ObjectRef, ...]:
        found: dict[ObjectRef, None] = {}
        for source in sources:
            found.update(dict.fromkeys(self.readers.downstream_of(source)))
        return tuple(found)

    def route(self, event: Event) -> Routed:
        """The objects `event` reconciles. Events that name nothing route nowhere, with a reason."""
        if isinstance(event, GitPush):
            result = self.git.route(event)
            argo = self.argocd.route(event)
            skipped = (*result.skipped, *argo.skipped)
            reason = (
                None
                if result.targets or argo.targets or skipped
                else "no GitRepository or Argo CD object points at this repository"
            )
            downstream = self.downstream_of(result.targets) if self.with_downstream else ()
            hydrate = self.argocd.hydrating(event, argo.targets)
            return Routed(result.targets, downstream, skipped, reason, argo.targets, hydrate)
        if isinstance(event, ImagePush):
            image_route = images.route_image(event, index=self.images)
            argo_route = self.argocd.route_image(event)
            downstream = self.downstream_of(image_route.targets) if self.with_downstream else ()
            skipped = (*image_route.skipped, *argo_route.skipped)
            matched = image_route.targets or argo_route.targets or skipped
            reason = None if matched else image_route.reason
            hydrate = self.argocd.hydrating(event, argo_route.targets)
            return Routed(
                image_route.targets, downstream, skipped, reason, argo_route.targets, hydrate
            )
        return Routed(reason="the event names no repository or image")


def route_with_selector(
    repositories: Iterable[Mapping[str, Any]],
    *,
    push: GitPush,
    label_selector: str | None,
    argocd_objects: Iterable[Mapping[str, Any]] = (),
) -> tuple[RouteResult, tuple[GitRepoRecord | ArgoRecord, ...]]:
    """Route `push` over raw GitRepositories (and Argo CD Applications and ApplicationSets) as
    the service would, and explain the objects of the same repository that the label selector
    keeps out of its index."""
    index = RouteIndex()
    excluded: list[GitRepoRecord] = []
    for obj in repositories:
        record = records.record_from_git_repository(obj)
        if selectors.matches(label_selector, dict(record.labels)):
            index.upsert(record)
        else:
            excluded.append(record)
    argo_index = ArgoIndex()
    argo_excluded = ArgoIndex()
    for obj in argocd_objects:
        argo_record = argocd.record_from_object(obj)
        if argo_record is None:
            continue
        selected = selectors.matches(label_selector, dict(argo_record.labels))
        (argo_index if selected else argo_excluded).upsert(argo_record)
    result = index.route(push)
    argo = argo_index.route(push)
    keys = set(result.repo_urls)
    hidden = [record for record in excluded if record.normalized_url in keys]
    argo_hidden = argo_excluded.records_for(push.repo_urls)
    skips = tuple(
        Skip(record.ref, SkipCause.SELECTOR, f"excluded by label selector {label_selector}")
        for record in (*hidden, *argo_hidden)
    )
    found = (
        *index.records_for(push.repo_urls),
        *hidden,
        *argo_index.records_for(push.repo_urls),
        *argo_hidden,
    )
    combined = RouteResult(
        targets=(*result.targets, *argo.targets),
        skipped=(*result.skipped, *argo.skipped, *skips),
        hits=(*result.hits, *argo.hits),
        repo_urls=result.repo_urls,
    )
    return combined, found
