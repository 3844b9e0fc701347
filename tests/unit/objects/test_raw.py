"""The one reader of raw objects: missing or mistyped fields read the same everywhere."""

from __future__ import annotations

from receiver.events import ObjectRef
from receiver.objects import raw


def test_object_ref_reads_metadata_and_type() -> None:
    obj = {
        "apiVersion": "source.toolkit.fluxcd.io/v1",
        "kind": "GitRepository",
        "metadata": {"namespace": "flux-system", "name": "fleet"},
    }
    assert raw.object_ref(obj) == ObjectRef(
        "source.toolkit.fluxcd.io/v1", "GitRepository", "flux-system", "fleet"
    )


def test_defaults_fill_only_what_the_object_omits() -> None:
    listed = {"metadata": {"namespace": "apps", "name": "web"}}
    ref = raw.object_ref(
        listed, default_api_version="kustomize.toolkit.fluxcd.io/v1", default_kind="Kustomization"
    )
    assert ref == ObjectRef("kustomize.toolkit.fluxcd.io/v1", "Kustomization", "apps", "web")
    typed = {"apiVersion": "helm.toolkit.fluxcd.io/v2", "kind": "HelmRelease", **listed}
    ref = raw.object_ref(typed, default_api_version="x/v1", default_kind="Other")
    assert (ref.api_version, ref.kind) == ("helm.toolkit.fluxcd.io/v2", "HelmRelease")


def test_mistyped_fields_read_as_empty() -> None:
    obj = {"apiVersion": 1, "kind": None, "metadata": {"namespace": ["x"], "name": 7}}
    assert raw.object_ref(obj) == ObjectRef("", "", "", "")
    assert raw.object_ref({"metadata": "nope"}) == ObjectRef("", "", "", "")
    assert raw.object_key({}) == ("", "")


def test_mapping_and_text() -> None:
    assert raw.mapping({"a": 1}) == {"a": 1}
    assert raw.mapping(["a"]) == {}
    assert raw.mapping(None) == {}
    assert raw.text("x") == "x"
    assert raw.text(3) == ""


def test_object_key_is_namespace_then_name() -> None:
    assert raw.object_key({"metadata": {"namespace": "ns", "name": "n"}}) == ("ns", "n")


def test_shared_strings_are_interned() -> None:
    first = raw.object_ref({"kind": "".join(["Git", "Repository"]), "metadata": {}})
    second = raw.object_ref({"kind": "".join(["GitRep", "ository"]), "metadata": {}})
    assert first.kind is second.kind
