"""Container image references: normalisation, routing records, and the image index.

Pure: no I/O, no clock. A pushed image (`ImagePush.repository`) and the image named by a Flux
object (`ImageRepository.spec.image`, `OCIRepository.spec.url`, an OCI `HelmRepository`'s
`spec.url`) are compared only after `normalize_image`: lower-case host and path, Docker Hub's
aliases folded into `docker.io`, `library/` added to official images, ports kept.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeAlias

from receiver.errors import ConstraintError
from receiver.events import ImagePush, ObjectRef
from receiver.objects import raw
from receiver.routing import semver
from receiver.routing.index import Hit, Skip, SkipCause

DOCKER_HUB = "docker.io"
# Every name Docker Hub answers to; a reference without a host means Docker Hub too.
DOCKER_HUB_ALIASES = frozenset(
    {"docker.io", "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com"}
)
OCI_SCHEME = "oci://"
# Flux's OCIRepository pulls `latest` when `spec.ref` is empty.
DEFAULT_OCI_TAG = "latest"
# Characters a repository path component may hold (distribution's grammar, after lower-casing).
_PATH_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789._-/")
# A DNS name or a bracketed IPv6 address, then an optional port (after lower-casing).
_HOST = re.compile(r"(?:[a-z0-9](?:[a-z0-9.-]*[a-z0-9])?|\[[0-9a-f:.]+\])(?::[0-9]{1,5})?")


@dataclass(frozen=True, slots=True, order=True)
class NormalizedImage:
    """A registry host and a repository path, both lower-case: `docker.io/library/nginx`."""

    host: str
    path: str

    def __str__(self) -> str:
        return f"{self.host}/{self.path}"

    @property
    def parent(self) -> NormalizedImage | None:
        """The image one path level up (`host/charts` for `host/charts/app`), None at the top."""
        head, sep, _ = self.path.rpartition("/")
        return NormalizedImage(self.host, head) if sep else None


@dataclass(frozen=True, slots=True)
class ImageRef:
    """A parsed reference: the normalised image plus the tag and digest it named, if any."""

    image: NormalizedImage
    tag: str | None = None
    digest: str | None = None


def split_image_ref(ref: str) -> ImageRef | None:
    """Parse `[oci://][host[:port]/]path[:tag][@digest]`; None when it is not an image name.

    A first path component is a host when it holds a `.` or a `:` or is `localhost`, as the
    Docker CLI decides, and always after `oci://` (Flux reads those as URLs: `oci://zot/app`
    is host `zot`). Tags keep their case (they are case-sensitive); the rest is folded.
    """
    text = ref.strip()
    explicit_host = text.lower().startswith(OCI_SCHEME)
    if explicit_host:
        text = text[len(OCI_SCHEME) :]
    text = text.rstrip("/")
    if not text or any(ch.isspace() for ch in text):
        return None
    name, at, digest = text.partition("@")
    if at and ":" not in digest:
        return None
    tag: str | None = None
    slash = name.rfind("/")
    colon = name.rfind(":")
    if colon > slash:
        name, tag = name[:colon], name[colon + 1 :]
        if not tag:
            tag = None
    image = _normalize_name(name, explicit_host=explicit_host)
    if image is None:
        return None
    return ImageRef(image=image, tag=tag, digest=digest or None)


def normalize_image(ref: str) -> NormalizedImage | None:
    """The normalised image a reference names, tag and digest dropped; None when invalid."""
    parsed = split_image_ref(ref)
    return parsed.image if parsed else None


def _normalize_name(name: str, *, explicit_host: bool) -> NormalizedImage | None:
    parts = name.split("/")
    first = parts[0]
    looks_like_host = "." in first or ":" in first or first.lower() == "localhost"
    if len(parts) > 1 and (explicit_host or looks_like_host):
        host, path_parts = first.lower(), parts[1:]
    else:
        host, path_parts = DOCKER_HUB, parts
    if host in DOCKER_HUB_ALIASES:
        host = DOCKER_HUB
    path_parts = [part.lower() for part in path_parts]
    if any(part in ("", ".", "..") for part in path_parts):
        return None
    if host == DOCKER_HUB and len(path_parts) == 1:
        path_parts = ["library", *path_parts]
    path = "/".join(path_parts)
    if not set(path) <= _PATH_CHARS or not _HOST.fullmatch(host):
        return None
    return NormalizedImage(host=host, path=path)


# --- records: what routing keeps of each Flux object ---------------------------------------


@dataclass(frozen=True, slots=True)
class ImageRepositoryRecord:
    """An `ImageRepository`: any push to its image is worth a scan."""

    ref: ObjectRef
    image: NormalizedImage
    suspended: bool = False


@dataclass(frozen=True, slots=True)
class OciRepositoryRecord:
    """An `OCIRepository` and the one `spec.ref` selector Flux honours (digest > semver > tag)."""

    ref: ObjectRef
    image: NormalizedImage
    tag: str | None = None
    semver: str | None = None
    semver_filter: str | None = None
    digest: str | None = None
    suspended: bool = False


@dataclass(frozen=True, slots=True)
class HelmOciRecord:
    """A `HelmRepository` of `type: oci`: charts live one level below `prefix`."""

    ref: ObjectRef
    prefix: NormalizedImage
    suspended: bool = False


ImageRecord: TypeAlias = ImageRepositoryRecord | OciRepositoryRecord | HelmOciRecord


def _object_ref(obj: Mapping[str, Any]) -> ObjectRef | None:
    """None for an object without a namespace and a name: it cannot be reconciled."""
    ref = raw.object_ref(obj)
    return ref if ref.namespace and ref.name else None


def _text(value: object) -> str | None:
    return raw.text(value) or None


def image_repository_record(obj: Mapping[str, Any]) -> ImageRepositoryRecord | None:
    """From an `ImageRepository` object; None when `spec.image` is missing or not an image."""
    ref, spec = _object_ref(obj), raw.mapping(obj.get("spec"))
    image = normalize_image(_text(spec.get("image")) or "")
    if ref is None or image is None:
        return None
    return ImageRepositoryRecord(ref=ref, image=image, suspended=spec.get("suspend") is True)


def oci_repository_record(obj: Mapping[str, Any]) -> OciRepositoryRecord | None:
    """From an `OCIRepository`; None unless `spec.url` is an `oci://` image reference."""
    ref, spec = _object_ref(obj), raw.mapping(obj.get("spec"))
    url = _text(spec.get("url")) or ""
    image = normalize_image(url) if url.lower().startswith(OCI_SCHEME) else None
    if ref is None or image is None:
        return None
    selector = raw.mapping(spec.get("ref"))
    return OciRepositoryRecord(
        ref=ref,
        image=image,
        tag=_text(selector.get("tag")),
        semver=_text(selector.get("semver")),
        semver_filter=_text(selector.get("semverFilter")),
        digest=_text(selector.get("digest")),
        suspended=spec.get("suspend") is True,
    )


def helm_oci_record(obj: Mapping[str, Any]) -> HelmOciRecord | None:
    """From a `HelmRepository`; None unless `spec.type` is `oci` and the URL is `oci://`."""
    ref, spec = _object_ref(obj), raw.mapping(obj.get("spec"))
    url = _text(spec.get("url")) or ""
    if spec.get("type") != "oci" or not url.lower().startswith(OCI_SCHEME):
        return None
    prefix = _helm_prefix(url)
    if ref is None or prefix is None:
        return None
    return HelmOciRecord(ref=ref, prefix=prefix, suspended=spec.get("suspend") is True)


def _helm_prefix(url: str) -> NormalizedImage | None:
    """`oci://host/path` names a prefix, not an image: no `library/`, no tag split."""
    rest = url[len(OCI_SCHEME) :].strip().rstrip("/")
    host, sep, path = rest.partition("/")
    image = normalize_image(f"{OCI_SCHEME}{host}/{path}{'/' if sep else ''}chart")
    if image is None:
        return None
    # A repository at the registry root: the prefix is the bare host.
    return image.parent or NormalizedImage(host=image.host, path="")


_BUILDERS = {
    "ImageRepository": image_repository_record,
    "OCIRepository": oci_repository_record,
    "HelmRepository": helm_oci_record,
}


def record_from_object(obj: Mapping[str, Any]) -> ImageRecord | None:
    """The record for any Flux object routing cares about; None for other kinds or shapes."""
    builder = _BUILDERS.get(str(obj.get("kind", "")))
    return builder(obj) if builder else None


# --- the index --------------------------------------------------------------------------


class ImageIndex:
    """Normalised image -> the records that watch it, kept up to date one object at a time.

    `put` replaces whatever an object contributed before (its image may have changed); `remove`
    drops it. Lookups never scan every object.
    """

    def __init__(self, records: Iterable[ImageRecord] = ()) -> None:
        self._by_image: dict[NormalizedImage, dict[ObjectRef, ImageRecord]] = {}
        self._key_of: dict[ObjectRef, NormalizedImage] = {}
        for record in records:
            self.put(record)

    def __len__(self) -> int:
        return len(self._key_of)

    def put(self, record: ImageRecord) -> None:
        self.remove(record.ref)
        key = record.prefix if isinstance(record, HelmOciRecord) else record.image
        self._by_image.setdefault(key, {})[record.ref] = record
        self._key_of[record.ref] = key

    def remove(self, ref: ObjectRef) -> None:
        key = self._key_of.pop(ref, None)
        if key is None:
            return
        bucket = self._by_image.get(key, {})
        bucket.pop(ref, None)
        if not bucket:
            self._by_image.pop(key, None)

    def candidates(self, image: NormalizedImage) -> tuple[ImageRecord, ...]:
        """Records naming `image`, plus OCI Helm repositories one level above it."""
        found = list(self._by_image.get(image, {}).values())
        parent = image.parent or NormalizedImage(image.host, "")
        found.extend(
            record
            for record in self._by_image.get(parent, {}).values()
            if isinstance(record, HelmOciRecord)
        )
        return tuple(sorted(found, key=lambda record: record.ref))


# --- routing a push -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ImageRoute:
    """What a push reconciles: `targets` (with `hits` saying why), the near misses in `skipped`
    (the Git route's `Skip`: cause `suspended`, or `ref` for a tag/semver/digest selector that
    the push does not move), the image looked up, and `reason` when nothing matched at all."""

    image: NormalizedImage | None
    targets: tuple[ObjectRef, ...] = ()
    skipped: tuple[Skip, ...] = ()
    hits: tuple[Hit, ...] = ()
    reason: str | None = None


def route_image(push: ImagePush, *, index: ImageIndex) -> ImageRoute:
    """Match a push against the index. A tag the sender did not name matches any tag rule."""
    parsed = split_image_ref(push.repository)
    if parsed is None:
        return ImageRoute(image=None, reason=f"not an image reference: {push.repository!r}")
    tag = push.tag or parsed.tag
    hits: list[Hit] = []
    skipped: list[Skip] = []
    for record in index.candidates(parsed.image):
        if record.suspended:
            skipped.append(Skip(record.ref, SkipCause.SUSPENDED, "suspended"))
            continue
        miss = _oci_miss(record, tag) if isinstance(record, OciRepositoryRecord) else None
        if miss is None:
            hits.append(Hit(record.ref, _hit_reason(record, tag)))
        else:
            skipped.append(Skip(record.ref, SkipCause.REF, miss))
    reason = None if hits or skipped else f"no object watches {parsed.image}"
    return ImageRoute(
        image=parsed.image,
        targets=tuple(hit.ref for hit in hits),
        skipped=tuple(skipped),
        hits=tuple(hits),
        reason=reason,
    )


def _hit_reason(record: ImageRecord, tag: str | None) -> str:
    if isinstance(record, HelmOciRecord):
        return f"chart pushed under oci://{record.prefix}"
    if isinstance(record, ImageRepositoryRecord):
        return f"image {record.image} pushed"
    if tag is None:
        return "the push names no tag: any tag rule may move"
    if record.semver:
        return f"tag {tag!r} satisfies semver range {record.semver!r}"
    return f"tag {tag!r} pushed"


def _oci_miss(record: OciRepositoryRecord, tag: str | None) -> str | None:
    """Why a push does not move this OCIRepository, or None when it may."""
    if record.digest:
        return f"pinned to digest {record.digest}"
    if tag is None:
        return None
    if record.semver:
        return _semver_miss(record, tag)
    wanted = record.tag or DEFAULT_OCI_TAG
    return None if tag == wanted else f"tag {tag!r} is not {wanted!r}"


def _semver_miss(record: OciRepositoryRecord, tag: str) -> str | None:
    assert record.semver is not None
    if record.semver_filter:
        try:
            if re.search(record.semver_filter, tag) is None:
                return f"tag {tag!r} does not match semverFilter {record.semver_filter!r}"
        except re.error:
            return f"semverFilter {record.semver_filter!r} is not a valid regular expression"
    constraint = semver.cached_constraint(record.semver)
    if isinstance(constraint, ConstraintError):
        return f"semver range {record.semver!r} cannot be parsed"
    if not constraint.matches(tag):
        return f"tag {tag!r} is outside semver range {record.semver!r}"
    return None
