"""Image reference normalisation, routing records, the image index and `route_image`."""

from __future__ import annotations

from typing import Any

import pytest

from receiver.events import ImagePush, ObjectRef
from receiver.routing import images
from receiver.routing.images import ImageIndex, ImageRef, NormalizedImage
from receiver.routing.index import SkipCause

DIGEST = "sha256:" + "ab" * 32

# (reference, host, path, tag, digest)
NORMALISATION: list[tuple[str, str, str, str | None, str | None]] = [
    ("nginx", "docker.io", "library/nginx", None, None),
    ("nginx:1.27-alpine", "docker.io", "library/nginx", "1.27-alpine", None),
    ("library/nginx", "docker.io", "library/nginx", None, None),
    ("docker.io/nginx", "docker.io", "library/nginx", None, None),
    ("docker.io/library/nginx:latest", "docker.io", "library/nginx", "latest", None),
    ("index.docker.io/library/nginx", "docker.io", "library/nginx", None, None),
    ("registry-1.docker.io/library/nginx", "docker.io", "library/nginx", None, None),
    ("registry-1.docker.io/nginx", "docker.io", "library/nginx", None, None),
    ("registry.hub.docker.com/acme/app", "docker.io", "acme/app", None, None),
    ("DOCKER.IO/Acme/App:V2", "docker.io", "acme/app", "V2", None),
    ("acme/app", "docker.io", "acme/app", None, None),
    ("acme/team/app", "docker.io", "acme/team/app", None, None),
    ("ghcr.io/Acme-Corp/podinfo:6.5.4", "ghcr.io", "acme-corp/podinfo", "6.5.4", None),
    (
        "oci://ghcr.io/stefanprodan/manifests/podinfo",
        "ghcr.io",
        "stefanprodan/manifests/podinfo",
        None,
        None,
    ),
    ("OCI://GHCR.IO/Org/App", "ghcr.io", "org/app", None, None),
    ("oci://docker.io/nginx", "docker.io", "library/nginx", None, None),
    ("localhost:5000/app:dev", "localhost:5000", "app", "dev", None),
    ("localhost/app", "localhost", "app", None, None),
    ("LocalHost/App", "localhost", "app", None, None),
    ("localhost", "docker.io", "library/localhost", None, None),
    (
        "registry.internal.example:5000/platform/podinfo",
        "registry.internal.example:5000",
        "platform/podinfo",
        None,
        None,
    ),
    ("registry.example.com:443/app", "registry.example.com:443", "app", None, None),
    ("10.0.0.5:5000/team/app:1", "10.0.0.5:5000", "team/app", "1", None),
    ("[::1]:5000/app", "[::1]:5000", "app", None, None),
    (f"us-docker.pkg.dev/p/r/img@{DIGEST}", "us-docker.pkg.dev", "p/r/img", None, DIGEST),
    (f"ghcr.io/org/app:1.0@{DIGEST}", "ghcr.io", "org/app", "1.0", DIGEST),
    (f"nginx@{DIGEST}", "docker.io", "library/nginx", None, DIGEST),
    ("ghcr.io/org/app/", "ghcr.io", "org/app", None, None),
    ("  quay.io/acme/podinfo  ", "quay.io", "acme/podinfo", None, None),
    (
        "harbor.example.com:8443/platform/podinfo:1.4.2",
        "harbor.example.com:8443",
        "platform/podinfo",
        "1.4.2",
        None,
    ),
    ("ghcr.io/org/app:", "ghcr.io", "org/app", None, None),
    ("ghcr.io", "docker.io", "library/ghcr.io", None, None),
    ("acmeregistry.azurecr.io/apps/podinfo", "acmeregistry.azurecr.io", "apps/podinfo", None, None),
    ("my_org/my.app__x", "docker.io", "my_org/my.app__x", None, None),
]

INVALID = [
    "",
    "   ",
    "oci://",
    "ghcr.io/org//app",
    "ghcr.io/org/app with space",
    "ghcr.io/../etc",
    "ghcr.io/./app",
    "ghcr.io/org/app@",
    "ghcr.io/org/app@latest",
    "ghcr.io/ørg/app",
    "ghcr.io/org/app$",
    "ghcr.io:/app",
    ":5000/app",
]


@pytest.mark.parametrize(
    ("ref", "host", "path", "tag", "digest"), NORMALISATION, ids=[case[0] for case in NORMALISATION]
)
def test_split_image_ref(
    ref: str, host: str, path: str, tag: str | None, digest: str | None
) -> None:
    assert images.split_image_ref(ref) == ImageRef(NormalizedImage(host, path), tag, digest)
    assert images.normalize_image(ref) == NormalizedImage(host, path)


@pytest.mark.parametrize("ref", INVALID, ids=[repr(ref) for ref in INVALID])
def test_invalid_references(ref: str) -> None:
    assert images.split_image_ref(ref) is None
    assert images.normalize_image(ref) is None


def test_docker_hub_aliases_are_one_registry() -> None:
    forms = [
        "nginx",
        "library/nginx",
        "docker.io/nginx",
        "index.docker.io/library/nginx:1",
        "registry-1.docker.io/library/nginx",
        "oci://docker.io/library/nginx",
    ]
    assert {images.normalize_image(form) for form in forms} == {
        NormalizedImage("docker.io", "library/nginx")
    }


def test_ports_and_hosts_stay_distinct() -> None:
    assert images.normalize_image("registry.example.com/app") != images.normalize_image(
        "registry.example.com:443/app"
    )
    assert images.normalize_image("ghcr.io/org/app") != images.normalize_image("quay.io/org/app")


def test_str_and_parent() -> None:
    image = NormalizedImage("ghcr.io", "acme/charts/podinfo")
    assert str(image) == "ghcr.io/acme/charts/podinfo"
    assert image.parent == NormalizedImage("ghcr.io", "acme/charts")
    assert NormalizedImage("ghcr.io", "app").parent is None


# --- records and routing -------------------------------------------------------------------


def obj(kind: str, name: str, spec: dict[str, Any], namespace: str = "apps") -> dict[str, Any]:
    versions = {
        "ImageRepository": "image.toolkit.fluxcd.io/v1beta2",
        "OCIRepository": "source.toolkit.fluxcd.io/v1beta2",
        "HelmRepository": "source.toolkit.fluxcd.io/v1",
    }
    return {
        "apiVersion": versions[kind],
        "kind": kind,
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


OBJECTS = [
    obj("ImageRepository", "nginx", {"image": "nginx"}),
    obj("ImageRepository", "podinfo-img", {"image": "ghcr.io/Acme-Corp/podinfo"}),
    obj("ImageRepository", "paused", {"image": "ghcr.io/acme-corp/podinfo", "suspend": True}),
    obj("OCIRepository", "tag-latest", {"url": "oci://ghcr.io/acme-corp/podinfo"}),
    obj(
        "OCIRepository",
        "tag-654",
        {"url": "oci://ghcr.io/acme-corp/podinfo", "ref": {"tag": "6.5.4"}},
    ),
    obj(
        "OCIRepository",
        "semver-6",
        {"url": "oci://ghcr.io/acme-corp/podinfo", "ref": {"semver": ">=6.0.0 <7.0.0"}},
    ),
    obj(
        "OCIRepository",
        "semver-rc",
        {
            "url": "oci://ghcr.io/acme-corp/podinfo",
            "ref": {"semver": ">=6.0.0-0", "semverFilter": ".*-rc.*"},
        },
    ),
    obj(
        "OCIRepository",
        "pinned",
        {"url": "oci://ghcr.io/acme-corp/podinfo", "ref": {"digest": DIGEST, "tag": "6.5.4"}},
    ),
    obj(
        "OCIRepository",
        "bad-range",
        {"url": "oci://ghcr.io/acme-corp/podinfo", "ref": {"semver": ">>1"}},
    ),
    obj("HelmRepository", "charts", {"type": "oci", "url": "oci://ghcr.io/Acme-Corp/charts"}),
    obj("HelmRepository", "http-charts", {"url": "https://charts.example.com"}),
]


@pytest.fixture
def index() -> ImageIndex:
    records = [images.record_from_object(o) for o in OBJECTS]
    return ImageIndex(record for record in records if record is not None)


def push(repository: str, tag: str | None = None, digest: str | None = None) -> ImagePush:
    return ImagePush(source="ghcr", event="package", repository=repository, tag=tag, digest=digest)


def names(refs: tuple[ObjectRef, ...]) -> set[str]:
    return {r.name for r in refs}


def test_non_oci_objects_make_no_record() -> None:
    assert images.record_from_object(obj("HelmRepository", "h", {"url": "https://x"})) is None
    assert images.record_from_object(obj("OCIRepository", "o", {"url": "https://x/y"})) is None
    assert images.record_from_object(obj("ImageRepository", "i", {})) is None
    assert images.record_from_object({"kind": "GitRepository", "spec": {}}) is None
    assert images.record_from_object({"kind": "ImageRepository", "spec": {"image": "a"}}) is None


def test_index_holds_every_oci_object(index: ImageIndex) -> None:
    assert len(index) == len(OBJECTS) - 1


def test_docker_hub_alias_push_reaches_the_short_name(index: ImageIndex) -> None:
    route = images.route_image(push("registry-1.docker.io/library/nginx", "1.27"), index=index)
    assert names(route.targets) == {"nginx"}
    assert route.image == NormalizedImage("docker.io", "library/nginx")


def test_tag_rules(index: ImageIndex) -> None:
    route = images.route_image(push("ghcr.io/acme-corp/podinfo", "6.5.4"), index=index)
    assert names(route.targets) == {"podinfo-img", "tag-654", "semver-6"}
    skipped = {s.ref.name: s.reason for s in route.skipped}
    assert skipped["paused"] == "suspended"
    causes = {s.ref.name: s.cause for s in route.skipped}
    assert causes["paused"] == SkipCause.SUSPENDED and causes["tag-latest"] == SkipCause.REF
    hits = {h.ref.name: h.reason for h in route.hits}
    assert hits["semver-6"] == "tag '6.5.4' satisfies semver range '>=6.0.0 <7.0.0'"
    assert skipped["tag-latest"] == "tag '6.5.4' is not 'latest'"
    assert skipped["pinned"].startswith("pinned to digest")
    assert "semverFilter" in skipped["semver-rc"]
    assert "cannot be parsed" in skipped["bad-range"]


def test_latest_default_and_out_of_range(index: ImageIndex) -> None:
    route = images.route_image(push("GHCR.io/acme-corp/podinfo:latest"), index=index)
    assert names(route.targets) == {"podinfo-img", "tag-latest"}
    assert "outside semver range" in {s.ref.name: s.reason for s in route.skipped}["semver-6"]


def test_prerelease_matches_only_the_prerelease_range(index: ImageIndex) -> None:
    route = images.route_image(push("ghcr.io/acme-corp/podinfo", "6.6.0-rc.1"), index=index)
    assert names(route.targets) == {"podinfo-img", "semver-rc"}


def test_unknown_tag_matches_every_tag_rule_but_not_a_pin(index: ImageIndex) -> None:
    route = images.route_image(push("ghcr.io/acme-corp/podinfo", digest=DIGEST), index=index)
    assert names(route.targets) == {
        "podinfo-img",
        "tag-latest",
        "tag-654",
        "semver-6",
        "semver-rc",
        "bad-range",
    }
    assert {s.ref.name for s in route.skipped} == {"paused", "pinned"}


def test_helm_oci_repository_matches_charts_one_level_below(index: ImageIndex) -> None:
    chart = images.route_image(push("ghcr.io/acme-corp/charts/podinfo", "6.5.4"), index=index)
    assert names(chart.targets) == {"charts"}
    nested = images.route_image(push("ghcr.io/acme-corp/charts/sub/podinfo", "1"), index=index)
    assert nested.targets == ()
    assert nested.reason == "no object watches ghcr.io/acme-corp/charts/sub/podinfo"


def test_helm_repository_at_registry_root() -> None:
    record = images.record_from_object(
        obj("HelmRepository", "root", {"type": "oci", "url": "oci://Registry.Example:5000"})
    )
    index = ImageIndex([record] if record else [])
    route = images.route_image(push("registry.example:5000/podinfo", "1.0.0"), index=index)
    assert names(route.targets) == {"root"}


def test_put_replaces_and_remove_drops() -> None:
    before = images.record_from_object(obj("ImageRepository", "app", {"image": "ghcr.io/a/old"}))
    after = images.record_from_object(obj("ImageRepository", "app", {"image": "ghcr.io/a/new"}))
    assert before is not None and after is not None
    index = ImageIndex([before])
    index.put(after)
    assert len(index) == 1
    assert images.route_image(push("ghcr.io/a/old", "1"), index=index).targets == ()
    assert names(images.route_image(push("ghcr.io/a/new", "1"), index=index).targets) == {"app"}
    index.remove(after.ref)
    index.remove(after.ref)
    assert len(index) == 0
    assert images.route_image(push("ghcr.io/a/new", "1"), index=index).targets == ()


def test_unparseable_push_is_explained(index: ImageIndex) -> None:
    route = images.route_image(push("not an image"), index=index)
    assert route.image is None
    assert route.targets == ()
    assert route.reason is not None and "not an image reference" in route.reason


def test_same_name_in_two_namespaces_are_two_targets() -> None:
    records = [
        images.record_from_object(obj("ImageRepository", "app", {"image": "quay.io/a/b"}, ns))
        for ns in ("team-a", "team-b")
    ]
    index = ImageIndex(r for r in records if r is not None)
    route = images.route_image(push("quay.io/a/b", "1"), index=index)
    assert [r.namespace for r in route.targets] == ["team-a", "team-b"]


def test_oci_scheme_always_names_a_host() -> None:
    assert images.normalize_image("oci://zot/apps/podinfo") == NormalizedImage(
        "zot", "apps/podinfo"
    )
    assert images.normalize_image("zot/apps/podinfo") == NormalizedImage(
        "docker.io", "zot/apps/podinfo"
    )
    record = images.record_from_object(
        obj("HelmRepository", "zot", {"type": "oci", "url": "oci://zot/charts/"})
    )
    assert record is not None and record.prefix == NormalizedImage("zot", "charts")  # type: ignore[union-attr]
