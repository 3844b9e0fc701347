"""The dry-run cluster: Kubernetes YAML files in a folder stand in for the API server.

`serve --inventory DIR` loads every `*.yaml`/`*.yml` under DIR (multi-document files too):
Receivers, Secrets, GitRepositories and the rest. Reconcile requests and status writes are
logged instead of sent, so a newcomer can watch the whole flow without a cluster.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import structlog
import yaml

from receiver.errors import ConfigError, TargetNotFound
from receiver.events import ObjectRef
from receiver.kube.patching import (
    TakeHydration,
    no_hydration,
    partial_metadata,
    request_patch,
)
from receiver.objects.resources import ResourceType, Selector

log = structlog.get_logger(__name__)

# libyaml's safe loader when PyYAML was built with it (much faster on big inventories).
_SAFE_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_objects(folder: Path) -> list[dict[str, Any]]:
    """Every Kubernetes object in the folder's YAML files, sorted by file name."""
    if not folder.is_dir():
        raise ConfigError(f"inventory folder {folder} does not exist")
    objects: list[dict[str, Any]] = []
    files = sorted([*folder.rglob("*.yaml"), *folder.rglob("*.yml")])
    for file in files:
        try:
            documents = list(yaml.load_all(file.read_text(), Loader=_SAFE_LOADER))
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"inventory file {file} cannot be read: {exc}") from None
        for document in documents:
            if isinstance(document, dict) and document.get("kind") and document.get("metadata"):
                document["metadata"].setdefault("namespace", "default")
                objects.append(document)
    return objects


class InventoryCluster:
    """Implements `patching.Cluster` by logging what would be sent."""

    def __init__(
        self,
        objects: list[dict[str, Any]],
        *,
        hard_refresh: bool = False,
        take_hydration: TakeHydration = no_hydration,
    ) -> None:
        self._objects = objects
        self._hard_refresh = hard_refresh
        self._take_hydration = take_hydration

    def _find(self, kind: str, namespace: str) -> list[dict[str, Any]]:
        return [
            obj
            for obj in self._objects
            if obj.get("kind") == kind and obj["metadata"].get("namespace") == namespace
        ]

    async def request_reconcile(
        self,
        target: ObjectRef,
        *,
        requested_at: str,
        annotations: Mapping[str, str] | None = None,
    ) -> str | None:
        names = {obj["metadata"].get("name") for obj in self._find(target.kind, target.namespace)}
        if target.name not in names:
            raise TargetNotFound(f"{target} is not in the inventory")
        log.info(
            "dry_run_patch",
            target=str(target),
            content_type="application/merge-patch+json",
            patch=request_patch(
                target,
                requested_at=requested_at,
                hard_refresh=self._hard_refresh,
                annotations=annotations,
                hydrate=self._take_hydration(target),
            ),
        )
        return None

    async def select(self, selector: Selector) -> list[ObjectRef]:
        wanted = dict(selector.match_labels)
        return [
            ObjectRef(
                selector.api_version, selector.kind, selector.namespace, obj["metadata"]["name"]
            )
            for obj in self._find(selector.kind, selector.namespace)
            if wanted.items() <= (obj["metadata"].get("labels") or {}).items()
        ]

    async def read_metadata(self, target: ObjectRef) -> dict[str, Any]:
        for obj in self._find(target.kind, target.namespace):
            if obj["metadata"].get("name") == target.name:
                return partial_metadata(obj, api_version=target.api_version)
        raise TargetNotFound(f"{target} is not in the inventory")

    async def select_metadata(self, selector: Selector) -> list[dict[str, Any]]:
        wanted = dict(selector.match_labels)
        return [
            partial_metadata(obj, api_version=selector.api_version)
            for obj in self._find(selector.kind, selector.namespace)
            if wanted.items() <= (obj["metadata"].get("labels") or {}).items()
        ]

    async def write_status(
        self, resource: ResourceType, *, namespace: str, name: str, patch: Mapping[str, Any]
    ) -> None:
        log.info(
            "dry_run_status",
            target=f"{resource.kind}/{namespace}/{name}",
            webhook_path=patch.get("status", {}).get("webhookPath"),
        )
