"""Reconcile requests and status writes against the live API server.

A reconcile request is a JSON merge patch of one annotation on the object's metadata, so it
works for every kind and version without a typed client (as Flux's own receiver does); for
an Argo CD Application or ApplicationSet it is Argo CD's refresh annotation instead.
`InventoryCluster` in `inventory.py` offers the same three calls for the dry-run mode.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from receiver.errors import KubeRejected, TargetNotFound
from receiver.events import ObjectRef
from receiver.kube import argocd as argocd_kinds
from receiver.kube.client import KubeClient
from receiver.objects.resources import ResourceType, Selector, resource_for
from receiver.routing import argocd

REQUESTED_AT = "reconcile.fluxcd.io/requestedAt"


class Cluster(Protocol):
    """What the trigger worker and the status writer need from the cluster."""

    async def request_reconcile(
        self,
        target: ObjectRef,
        *,
        requested_at: str,
        annotations: Mapping[str, str] | None = None,
    ) -> str | None:
        """Patch the reconcile annotation (and `annotations` riding along); returns the
        object's uid when known."""
        ...

    async def select(self, selector: Selector) -> list[ObjectRef]: ...

    async def read_metadata(self, target: ObjectRef) -> dict[str, Any]:
        """The object as Flux's resource filters see it (apiVersion, kind, metadata);
        raises TargetNotFound when it does not exist."""
        ...

    async def select_metadata(self, selector: Selector) -> list[dict[str, Any]]:
        """`read_metadata` of every object the selector matches."""
        ...

    async def write_status(
        self, resource: ResourceType, *, namespace: str, name: str, patch: Mapping[str, Any]
    ) -> None: ...


def reconcile_patch(
    requested_at: str, *, annotations: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """The merge patch asking Flux to reconcile, plus any annotations riding along with it."""
    return {"metadata": {"annotations": {**(annotations or {}), REQUESTED_AT: requested_at}}}


def partial_metadata(obj: Mapping[str, Any], *, api_version: str) -> dict[str, Any]:
    """What Flux reads for a filter (a `PartialObjectMetadata`): type and metadata only."""
    return {
        "apiVersion": obj.get("apiVersion") or api_version,
        "kind": obj.get("kind"),
        "metadata": obj.get("metadata") or {},
    }


def request_patch(
    target: ObjectRef,
    *,
    requested_at: str,
    hard_refresh: bool,
    annotations: Mapping[str, str] | None = None,
    hydrate: bool = False,
) -> dict[str, Any]:
    """The merge patch that asks `target`'s controller to act now: Flux's requestedAt
    annotation (with `annotations` riding along), or for an Argo CD object the refresh
    annotation its own webhook handler sets (`hard_refresh` makes an Application's refresh
    hard, `hydrate` adds Argo CD's hydrate annotation)."""
    refresh = argocd.refresh_patch(target.kind, hard=hard_refresh, hydrate=hydrate)
    if refresh is not None and argocd.is_argocd(target):
        return refresh
    return reconcile_patch(requested_at, annotations=annotations)


TakeHydration = Callable[[ObjectRef], bool]
"""Whether the refresh of an Application being sent now must also ask for hydration (the
discovery index remembers which pushes moved a source hydrator's dry source)."""


def no_hydration(target: ObjectRef) -> bool:
    return False


def _resource(api_version: str, kind: str) -> ResourceType:
    argocd_kind = argocd_kinds.KINDS.get(kind)
    if argocd_kind is not None and api_version.partition("/")[0] == argocd_kind.group:
        return argocd_kind
    return resource_for(kind=kind, api_version=api_version, preferred_versions={})


class OwnPatches:
    """The reconcile stamps we are writing, until the watch echoes them back.

    The first watched state of an object that carries one of our stamps is the state our own
    merge patch made (the stamp is new), and it differs from the state before only by that
    annotation: its consumer may skip it. The stamp is registered before the patch is sent, so
    the echo cannot outrun it. `watching` asks `consume` for MODIFIED events of a live watch
    only (a live watch delivers every earlier change first; a re-list may not). Stamps whose
    echo never comes (an object outside every watch) are dropped oldest first past `limit`.
    """

    def __init__(self, *, limit: int = 10_000) -> None:
        self._stamps: OrderedDict[tuple[str, str, str], str] = OrderedDict()
        self._limit = limit

    def __len__(self) -> int:
        return len(self._stamps)

    def expect(self, target: ObjectRef, requested_at: str) -> None:
        key = (target.kind, target.namespace, target.name)
        self._stamps[key] = requested_at
        self._stamps.move_to_end(key)
        if len(self._stamps) > self._limit:
            self._stamps.popitem(last=False)

    def forget(self, target: ObjectRef, requested_at: str) -> None:
        """The patch failed: no echo will come."""
        key = (target.kind, target.namespace, target.name)
        if self._stamps.get(key) == requested_at:
            del self._stamps[key]

    def consume(self, *, kind: str, namespace: str, name: str, obj: Mapping[str, Any]) -> bool:
        """True (once) when `obj` is the state our own patch made."""
        key = (kind, namespace, name)
        stamp = self._stamps.get(key)
        if stamp is None:
            return False
        annotations = (obj.get("metadata") or {}).get("annotations") or {}
        if annotations.get(REQUESTED_AT) != stamp:
            return False
        del self._stamps[key]
        return True


class LiveCluster:
    def __init__(
        self,
        client: KubeClient,
        *,
        hard_refresh: bool = False,
        own_patches: OwnPatches | None = None,
        take_hydration: TakeHydration = no_hydration,
    ) -> None:
        self._client = client
        self._hard_refresh = hard_refresh
        self._own_patches = own_patches
        self._take_hydration = take_hydration

    async def request_reconcile(
        self,
        target: ObjectRef,
        *,
        requested_at: str,
        annotations: Mapping[str, str] | None = None,
    ) -> str | None:
        path = _resource(target.api_version, target.kind).object_path(
            namespace=target.namespace, name=target.name
        )
        patch = request_patch(
            target,
            requested_at=requested_at,
            hard_refresh=self._hard_refresh,
            annotations=annotations,
            hydrate=self._take_hydration(target),
        )
        # Only Flux's requestedAt patch carries a stamp its echo can be known by.
        flux_patch = reconcile_patch(requested_at, annotations=annotations)
        own = self._own_patches if patch == flux_patch else None
        if own is not None:
            own.expect(target, requested_at)
        try:
            patched = await self._client.merge_patch(path, patch)
        except (TargetNotFound, KubeRejected):  # refused: no echo will come
            if own is not None:
                own.forget(target, requested_at)
            raise
        uid = (patched.get("metadata") or {}).get("uid")
        return str(uid) if uid else None

    async def select(self, selector: Selector) -> list[ObjectRef]:
        resource = _resource(selector.api_version, selector.kind)
        query = {"labelSelector": selector.label_selector}
        listing = await self._client.get(
            resource.collection_path(namespace=selector.namespace), query=query
        )
        return [
            ObjectRef(
                selector.api_version, selector.kind, selector.namespace, item["metadata"]["name"]
            )
            for item in listing.get("items") or []
        ]

    async def read_metadata(self, target: ObjectRef) -> dict[str, Any]:
        path = _resource(target.api_version, target.kind).object_path(
            namespace=target.namespace, name=target.name
        )
        return partial_metadata(await self._client.get(path), api_version=target.api_version)

    async def select_metadata(self, selector: Selector) -> list[dict[str, Any]]:
        resource = _resource(selector.api_version, selector.kind)
        query = {"labelSelector": ",".join(f"{k}={v}" for k, v in selector.match_labels)}
        listing = await self._client.get(
            resource.collection_path(namespace=selector.namespace), query=query
        )
        return [
            partial_metadata(item | {"kind": selector.kind}, api_version=selector.api_version)
            for item in listing.get("items") or []
        ]

    async def write_status(
        self, resource: ResourceType, *, namespace: str, name: str, patch: Mapping[str, Any]
    ) -> None:
        path = resource.object_path(namespace=namespace, name=name, subresource="status")
        await self._client.merge_patch(path, dict(patch))
