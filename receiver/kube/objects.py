"""Raw Flux objects (dicts as the API server returns them) -> routing records.

Pure: no I/O, no kubernetes_asyncio. The watches hand each object here and feed the result to
RouteIndex / DownstreamIndex. Strings repeated across thousands of objects (apiVersion,
kind, namespace, URLs, label keys) are interned and equal RefSpec values shared, so the
index stays within its memory budget.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any, TypeVar

from receiver.events import ObjectRef
from receiver.routing import paths, urls
from receiver.routing.index import DownstreamRecord, GitRepoRecord, SourceKey
from receiver.routing.refs import RefSpec

GIT_REPOSITORY_API_VERSION = "source.toolkit.fluxcd.io/v1"
GIT_REPOSITORY = "GitRepository"

_T = TypeVar("_T")

# Equal values (RefSpec, label and path tuples) are shared: most objects say `branch: main`
# and carry the labels of their team. Bounded so a cluster where every object differs cannot
# grow it without limit; past the bound values are simply not shared.
_SHARED: dict[object, object] = {}
_MAX_SHARED = 50_000


def record_from_git_repository(obj: Mapping[str, Any]) -> GitRepoRecord:
    """The routing record of a GitRepository; tolerant of missing or mistyped fields.

    A missing `spec.url` or one that names no repository gives `normalized_url` None: the
    object is kept (explain can show it) but no push routes to it.
    """
    spec = _mapping(obj.get("spec"))
    url = _text(spec.get("url"))
    normalized = urls.normalize_git_url(url)
    metadata = _mapping(obj.get("metadata"))
    annotations = _mapping(metadata.get("annotations"))
    annotation = annotations.get(paths.PATHS_ANNOTATION)
    return GitRepoRecord(
        ref=object_ref(obj, default_api_version=GIT_REPOSITORY_API_VERSION),
        url=sys.intern(url),
        normalized_url=None if normalized is None else urls.NormalizedUrl(sys.intern(normalized)),
        ref_spec=_shared(RefSpec.from_spec(_mapping(spec.get("ref")))),
        suspended=spec.get("suspend") is True,
        path_filters=_shared(
            paths.parse_paths(annotation if isinstance(annotation, str) else None)
        ),
        labels=_shared(_labels(metadata.get("labels"))),
    )


def record_from_kustomization(obj: Mapping[str, Any]) -> DownstreamRecord:
    """A Kustomization and its `spec.sourceRef` (namespace defaults to its own)."""
    ref = object_ref(obj, default_api_version="kustomize.toolkit.fluxcd.io/v1")
    source = _source_key(_mapping(_mapping(obj.get("spec")).get("sourceRef")), ref.namespace)
    return DownstreamRecord(ref=ref, source=source)


def record_from_helmrelease(obj: Mapping[str, Any]) -> DownstreamRecord:
    """A HelmRelease (v2) and its source: `spec.chartRef`, else `spec.chart.spec.sourceRef`.

    Both default their namespace to the HelmRelease's own.
    """
    ref = object_ref(obj, default_api_version="helm.toolkit.fluxcd.io/v2")
    spec = _mapping(obj.get("spec"))
    chart_ref = _mapping(spec.get("chartRef"))
    if not chart_ref:
        chart_ref = _mapping(_mapping(_mapping(spec.get("chart")).get("spec")).get("sourceRef"))
    return DownstreamRecord(ref=ref, source=_source_key(chart_ref, ref.namespace))


def object_ref(obj: Mapping[str, Any], *, default_api_version: str) -> ObjectRef:
    """The ObjectRef of a raw object, its shared parts interned."""
    metadata = _mapping(obj.get("metadata"))
    return ObjectRef(
        api_version=sys.intern(_text(obj.get("apiVersion")) or default_api_version),
        kind=sys.intern(_text(obj.get("kind")) or _kind_of(default_api_version)),
        namespace=sys.intern(_text(metadata.get("namespace"))),
        name=_text(metadata.get("name")),
    )


def _kind_of(api_version: str) -> str:
    return {
        GIT_REPOSITORY_API_VERSION: GIT_REPOSITORY,
        "kustomize.toolkit.fluxcd.io/v1": "Kustomization",
        "helm.toolkit.fluxcd.io/v2": "HelmRelease",
    }.get(api_version, "")


def _source_key(source_ref: Mapping[str, Any], own_namespace: str) -> SourceKey | None:
    kind, name = _text(source_ref.get("kind")), _text(source_ref.get("name"))
    if not kind or not name:
        return None
    namespace = _text(source_ref.get("namespace")) or own_namespace
    return (sys.intern(kind), sys.intern(namespace), name)


def _shared(value: _T) -> _T:
    """The one kept instance equal to `value` (a pure memo: equal in, equal out)."""
    shared = _SHARED.get(value)
    if shared is not None:
        return shared  # type: ignore[return-value]
    if len(_SHARED) < _MAX_SHARED:
        _SHARED[value] = value
    return value


def _labels(value: object) -> tuple[tuple[str, str], ...]:
    if not isinstance(value, Mapping) or not value:
        return ()
    return tuple(
        sorted(
            (sys.intern(key), sys.intern(item))
            for key, item in value.items()
            if isinstance(key, str) and isinstance(item, str)
        )
    )


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""
