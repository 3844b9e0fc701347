"""Flux kinds -> API paths, with and without an explicit apiVersion."""

from __future__ import annotations

import pytest

from receiver.errors import UnknownKind
from receiver.objects.resources import FLUX_KINDS, resource_for


@pytest.mark.parametrize("kind", sorted(FLUX_KINDS))
def test_every_flux_kind_resolves_to_its_group_and_plural(kind: str) -> None:
    group, plural, default_version = FLUX_KINDS[kind]
    resource = resource_for(kind=kind, api_version=None, preferred_versions={})
    assert resource.api_version == f"{group}/{default_version}"
    assert (
        resource.object_path(namespace="ns", name="x")
        == f"/apis/{group}/{default_version}/namespaces/ns/{plural}/x"
    )


def test_preferred_version_from_discovery_wins_over_default() -> None:
    resource = resource_for(
        kind="ImagePolicy", api_version=None, preferred_versions={"image.toolkit.fluxcd.io": "v1"}
    )
    assert resource.api_version == "image.toolkit.fluxcd.io/v1"


def test_explicit_api_version_is_kept_and_checked() -> None:
    resource = resource_for(
        kind="OCIRepository", api_version="source.toolkit.fluxcd.io/v1beta2", preferred_versions={}
    )
    assert resource.object_path(namespace="a", name="b", subresource="status").endswith(
        "/v1beta2/namespaces/a/ocirepositories/b/status"
    )
    with pytest.raises(UnknownKind, match="does not serve kind"):
        resource_for(kind="OCIRepository", api_version="apps/v1", preferred_versions={})


def test_non_flux_kind_is_refused() -> None:
    with pytest.raises(UnknownKind, match="Deployment"):
        resource_for(kind="Deployment", api_version=None, preferred_versions={})
