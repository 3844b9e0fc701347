"""Flux kinds a reconcile request may name: kind -> API group, plural and default version;
the API paths of their objects, and `Selector`, a label-selected set of them.

Pure: `kube/` calls the paths computed here. A `spec.resources[]` entry without `apiVersion`
gets the group's preferred version (read from API discovery at start-up where a cluster is
reachable, else the defaults below, which are the versions current Flux serves as storage).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from receiver.errors import UnknownKind


@dataclass(frozen=True, slots=True)
class ResourceType:
    group: str
    version: str
    plural: str
    kind: str

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def collection_path(self, *, namespace: str | None = None) -> str:
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        return (
            f"{base}/namespaces/{namespace}/{self.plural}" if namespace else f"{base}/{self.plural}"
        )

    def object_path(self, *, namespace: str, name: str, subresource: str | None = None) -> str:
        path = f"{self.collection_path(namespace=namespace)}/{name}"
        return f"{path}/{subresource}" if subresource else path


@dataclass(frozen=True, slots=True, order=True)
class Selector:
    """`name: '*'` with `matchLabels`: every object of a kind in a namespace with those labels."""

    api_version: str
    kind: str
    namespace: str
    match_labels: tuple[tuple[str, str], ...]

    def __str__(self) -> str:
        return f"{self.kind}/{self.namespace}/*[{self.label_selector}]"

    @property
    def label_selector(self) -> str:
        """The `labelSelector` query value: `k=v,k2=v2`."""
        return ",".join(f"{key}={value}" for key, value in self.match_labels)


SOURCE_GROUP = "source.toolkit.fluxcd.io"
IMAGE_GROUP = "image.toolkit.fluxcd.io"
KUSTOMIZE_GROUP = "kustomize.toolkit.fluxcd.io"
HELM_GROUP = "helm.toolkit.fluxcd.io"
NOTIFICATION_GROUP = "notification.toolkit.fluxcd.io"

# kind -> (group, plural, default version)
FLUX_KINDS: Mapping[str, tuple[str, str, str]] = {
    "GitRepository": (SOURCE_GROUP, "gitrepositories", "v1"),
    "OCIRepository": (SOURCE_GROUP, "ocirepositories", "v1"),
    "HelmRepository": (SOURCE_GROUP, "helmrepositories", "v1"),
    "HelmChart": (SOURCE_GROUP, "helmcharts", "v1"),
    "Bucket": (SOURCE_GROUP, "buckets", "v1"),
    "ImageRepository": (IMAGE_GROUP, "imagerepositories", "v1beta2"),
    "ImagePolicy": (IMAGE_GROUP, "imagepolicies", "v1beta2"),
    "ImageUpdateAutomation": (IMAGE_GROUP, "imageupdateautomations", "v1beta2"),
    "Kustomization": (KUSTOMIZE_GROUP, "kustomizations", "v1"),
    "HelmRelease": (HELM_GROUP, "helmreleases", "v2"),
}

RECEIVER = ResourceType(NOTIFICATION_GROUP, "v1", "receivers", "Receiver")
RECEIVER_V1BETA2 = ResourceType(NOTIFICATION_GROUP, "v1beta2", "receivers", "Receiver")
SECRET = ResourceType("", "v1", "secrets", "Secret")
GIT_REPOSITORY = ResourceType(SOURCE_GROUP, "v1", "gitrepositories", "GitRepository")
KUSTOMIZATION = ResourceType(KUSTOMIZE_GROUP, "v1", "kustomizations", "Kustomization")
HELM_RELEASE = ResourceType(HELM_GROUP, "v2", "helmreleases", "HelmRelease")


def resource_for(
    *, kind: str, api_version: str | None, preferred_versions: Mapping[str, str]
) -> ResourceType:
    """The resource type a reference points at; raises `UnknownKind` for a non-Flux kind."""
    entry = FLUX_KINDS.get(kind)
    if entry is None:
        raise UnknownKind(f"kind {kind!r} is not a Flux kind gitops-receiver can reconcile")
    group, plural, default_version = entry
    if api_version:
        ref_group, _, version = api_version.rpartition("/")
        if ref_group != group or not version:
            raise UnknownKind(f"apiVersion {api_version!r} does not serve kind {kind}")
    else:
        version = preferred_versions.get(group, default_version)
    return ResourceType(group, version, plural, kind)
