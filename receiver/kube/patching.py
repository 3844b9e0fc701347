"""Reconcile requests and status writes against the live API server.

A reconcile request is a JSON merge patch of one annotation on the object's metadata, so it
works for every kind and version without a typed client (as Flux's own receiver does); for
an Argo CD Application or ApplicationSet it is Argo CD's refresh annotation instead.
`InventoryCluster` in `inventory.py` offers the same three calls for the dry-run mode.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

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
) -> dict[str, Any]:
    """The merge patch that asks `target`'s controller to act now: Flux's requestedAt
    annotation (with `annotations` riding along), or for an Argo CD object the refresh
    annotation its own webhook handler sets (`hard_refresh` makes an Application's refresh
    hard)."""
    refresh = argocd.refresh_patch(target.kind, hard=hard_refresh)
    if refresh is not None and argocd.is_argocd(target):
        return refresh
    return reconcile_patch(requested_at, annotations=annotations)


def _resource(api_version: str, kind: str) -> ResourceType:
    argocd_kind = argocd_kinds.KINDS.get(kind)
    if argocd_kind is not None and api_version.partition("/")[0] == argocd_kind.group:
        return argocd_kind
    return resource_for(kind=kind, api_version=api_version, preferred_versions={})


class LiveCluster:
    def __init__(self, client: KubeClient, *, hard_refresh: bool = False) -> None:
        self._client = client
        self._hard_refresh = hard_refresh

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
        )
        patched = await self._client.merge_patch(path, patch)
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
