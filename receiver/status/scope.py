"""Which pushes and which Flux objects get commit statuses, and under which key.

Pure: no I/O, no clock. `service.py` asks here before it calls the journey: a push names a
commit only when it moved a ref to a real sha; a Kustomization always reports the commit it
applies; a HelmRelease only when its chart is built from a GitRepository with
`reconcileStrategy: Revision` (the chart version then ends in `+<sha[:12]>`; with the default
`ChartVersion` or a `chartRef` the release never names the commit, so a pending status would
stay pending forever). Docs: https://fluxcd.io/flux/components/source/helmcharts/#reconcile-strategy
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

from receiver.events import GitPush, ObjectRef
from receiver.objects import raw

KUSTOMIZATION: Final = "Kustomization"
HELM_RELEASE: Final = "HelmRelease"
APPLICATION: Final = "Application"
"""An Argo CD Application: it reports the commit it syncs, as a Kustomization does."""
CANONICAL_API_VERSIONS: Final[Mapping[str, str]] = {
    KUSTOMIZATION: "kustomize.toolkit.fluxcd.io/v1",
    HELM_RELEASE: "helm.toolkit.fluxcd.io/v2",
    APPLICATION: "argoproj.io/v1alpha1",
}
COMMIT_STRATEGY: Final = "Revision"
COMMIT_CHART_SOURCES: Final = frozenset({"GitRepository"})
"""Sources whose `Revision` strategy puts a Git commit in the chart version (Bucket: no Git)."""

_SHA1: Final = re.compile(r"^[0-9a-fA-F]{40}$")
_ZERO_SHA: Final = "0" * 40


def pushed_commit(push: GitPush) -> str | None:
    """The commit a push moved its ref to, lower-case; None for a deletion or a non-sha."""
    after = (push.after or "").strip()
    if push.deleted or not _SHA1.match(after) or after == _ZERO_SHA:
        return None
    return after.lower()


def status_ref(ref: ObjectRef) -> ObjectRef | None:
    """The key a Kustomization, HelmRelease or Application is tracked under, whatever
    apiVersion named it (the downstream index and the watch may disagree); None for any other
    kind."""
    api_version = CANONICAL_API_VERSIONS.get(ref.kind)
    if api_version is None:
        return None
    if ref.api_version == api_version:
        return ref
    return ObjectRef(api_version=api_version, kind=ref.kind, namespace=ref.namespace, name=ref.name)


def names_commits(obj: Mapping[str, Any]) -> bool:
    """Whether a HelmRelease's revisions carry the Git commit of its chart.

    True only for `spec.chart.spec` with `reconcileStrategy: Revision` and a GitRepository
    `sourceRef`; False for the default `ChartVersion`, a HelmRepository chart, and `chartRef`
    (an OCIRepository artifact, or a HelmChart whose strategy the release does not show).
    """
    spec = raw.mapping(obj.get("spec"))
    if raw.mapping(spec.get("chartRef")):
        return False
    chart_spec = raw.mapping(raw.mapping(spec.get("chart")).get("spec"))
    source_kind = raw.mapping(chart_spec.get("sourceRef")).get("kind")
    return (
        chart_spec.get("reconcileStrategy") == COMMIT_STRATEGY
        and source_kind in COMMIT_CHART_SOURCES
    )
