"""Raw Flux objects (dicts as the API server returns them) -> Git routing records.

Pure: no I/O. The watches hand each GitRepository, Kustomization and HelmRelease here (through
`discovery.py`) and the result goes to RouteIndex / DownstreamIndex; image sources have their
records in `images.py`. Strings repeated across thousands of objects (apiVersion,
kind, namespace, URLs, label keys) are interned and equal RefSpec values shared, so the
index stays within its memory budget.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any, TypeVar

from receiver.events import ObjectRef
from receiver.objects import raw, resources
from receiver.routing import paths, urls
from receiver.routing.index import DownstreamRecord, GitRepoRecord, SourceKey
from receiver.routing.refs import RefSpec

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
    spec = raw.mapping(obj.get("spec"))
    url = raw.text(spec.get("url"))
    normalized = urls.normalize_git_url(url)
    metadata = raw.mapping(obj.get("metadata"))
    annotations = raw.mapping(metadata.get("annotations"))
    annotation = annotations.get(paths.PATHS_ANNOTATION)
    return GitRepoRecord(
        ref=object_ref(obj, resources.GIT_REPOSITORY),
        url=sys.intern(url),
        normalized_url=None if normalized is None else urls.NormalizedUrl(sys.intern(normalized)),
        ref_spec=_shared(RefSpec.from_spec(raw.mapping(spec.get("ref")))),
        suspended=spec.get("suspend") is True,
        path_filters=_shared(
            paths.parse_paths(annotation if isinstance(annotation, str) else None)
        ),
        labels=_shared(_labels(metadata.get("labels"))),
    )


def record_from_kustomization(obj: Mapping[str, Any]) -> DownstreamRecord:
    """A Kustomization and its `spec.sourceRef` (namespace defaults to its own)."""
    ref = object_ref(obj, resources.KUSTOMIZATION)
    source = _source_key(raw.mapping(raw.mapping(obj.get("spec")).get("sourceRef")), ref.namespace)
    return DownstreamRecord(ref=ref, source=source)


def record_from_helmrelease(obj: Mapping[str, Any]) -> DownstreamRecord:
    """A HelmRelease (v2) and its source: `spec.chartRef`, else `spec.chart.spec.sourceRef`.

    Both default their namespace to the HelmRelease's own.
    """
    ref = object_ref(obj, resources.HELM_RELEASE)
    spec = raw.mapping(obj.get("spec"))
    chart_ref = raw.mapping(spec.get("chartRef"))
    if not chart_ref:
        chart_ref = raw.mapping(
            raw.mapping(raw.mapping(spec.get("chart")).get("spec")).get("sourceRef")
        )
    return DownstreamRecord(ref=ref, source=_source_key(chart_ref, ref.namespace))


def object_ref(obj: Mapping[str, Any], resource: resources.ResourceType) -> ObjectRef:
    """The object's ref; `resource` fills an apiVersion or kind the object omits."""
    return raw.object_ref(obj, default_api_version=resource.api_version, default_kind=resource.kind)


def _source_key(source_ref: Mapping[str, Any], own_namespace: str) -> SourceKey | None:
    kind, name = raw.text(source_ref.get("kind")), raw.text(source_ref.get("name"))
    if not kind or not name:
        return None
    namespace = raw.text(source_ref.get("namespace")) or own_namespace
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
