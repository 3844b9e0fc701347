"""The one typed event every source parses a delivery into.

Pure: no I/O. A source's `parse` returns a tuple of these values; routing, triggering and
status reporting read only these fields, so vendor field names never leave `sources/`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias


@dataclass(frozen=True, slots=True)
class GitPush:
    """A push of a branch or a tag to a Git repository.

    `repo_urls` holds every URL the forge names for the repository (clone, ssh, web), raw;
    routing normalises them. `ref` is the full ref name (`refs/heads/main`, `refs/tags/v1.2.0`).
    `changed_paths` is None when the file list is unknown or truncated: path filters must then
    never skip. `deleted` is True when the push removed the ref.
    """

    source: str
    event: str
    repo_urls: tuple[str, ...]
    ref: str
    before: str | None = None
    after: str | None = None
    deleted: bool = False
    default_branch: str | None = None
    changed_paths: frozenset[str] | None = None
    delivery_id: str | None = None
    repo_name: str | None = None


@dataclass(frozen=True, slots=True)
class ImagePush:
    """A push of a container image or OCI artifact to a registry.

    `repository` is the full image name as the registry names it, with the registry host when
    the payload gives one (`ghcr.io/org/app`, `docker.io/library/nginx`).
    """

    source: str
    event: str
    repository: str
    tag: str | None = None
    digest: str | None = None
    delivery_id: str | None = None


@dataclass(frozen=True, slots=True)
class Signal:
    """An authenticated request to reconcile that names no repository (generic, agentk's POST)."""

    source: str
    event: str = ""
    delivery_id: str | None = None


@dataclass(frozen=True, slots=True)
class Ignored:
    """A valid delivery that asks for nothing (ping, non-push event): answered 2xx."""

    source: str
    event: str
    reason: str
    delivery_id: str | None = None


Event: TypeAlias = GitPush | ImagePush | Signal | Ignored


@dataclass(frozen=True, slots=True, order=True)
class ObjectRef:
    """One Kubernetes object a reconcile request is aimed at."""

    api_version: str
    kind: str
    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.kind}/{self.namespace}/{self.name}"
