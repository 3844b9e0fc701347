"""Helpers shared by the container-registry sources: reference splitting, manifest media types.

Pure: no I/O. Sources keep names as the registry sent them (case and host aliases included);
`receiver/routing/images.py` normalises them later, so nothing here folds or validates.
"""

from __future__ import annotations

from dataclasses import dataclass

# Media types of what a `docker push` / `oras push` / `helm push` finishes with. Blob and layer
# uploads come first and carry none of these; only the manifest names a tag.
MANIFEST_MEDIA_TYPES = frozenset(
    {
        "application/vnd.docker.distribution.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v1+prettyjws",
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.oci.artifact.manifest.v1+json",
    }
)


@dataclass(frozen=True, slots=True)
class SplitReference:
    name: str
    tag: str | None
    digest: str | None


def split_reference(ref: str) -> SplitReference:
    """`host/path:tag@sha256:...` -> name, tag, digest; an empty tag (`name:`) is None."""
    name, _, digest = ref.strip().partition("@")
    tag: str | None = None
    if name.rfind(":") > name.rfind("/"):
        name, _, tag = name.rpartition(":")
    return SplitReference(name=name, tag=tag or None, digest=digest or None)


def join_name(host: str | None, repository: str) -> str:
    """`host/repository`, or the bare repository when the host is unknown."""
    repository = repository.strip("/")
    return f"{host.rstrip('/')}/{repository}" if host else repository
