"""Argo CD matching against the real API server with Argo CD's own CRDs.

Every case of the shared table (tests/support/argocd_cases.py) is created as a real
Application or ApplicationSet, so the CRD schema validates its shape; the objects are listed
back as the watch would see them (defaults and pruning applied by the API server), indexed,
and each case's push must refresh exactly the objects it expects.
"""

from __future__ import annotations

from typing import Any

from receiver.events import GitPush, ObjectRef
from receiver.routing import argocd
from receiver.routing.argocd_index import ArgoIndex
from tests import envtest
from tests.support.argocd_cases import CASES


def create_all(server: envtest.KubeTestServer, namespace: str) -> list[dict[str, Any]]:
    listed: list[dict[str, Any]] = []
    for kind, plural in argocd.PLURALS.items():
        base = f"/apis/{argocd.API_VERSION}/namespaces/{namespace}/{plural}"
        for case in (case for case in CASES if case.kind == kind):
            status, body = server.request("POST", base, body=case.manifest(namespace))
            assert status == 201, f"{case.id}: HTTP {status}: {body}"
        status, body = server.request("GET", base)
        assert status == 200, body
        listed.extend({**item, "kind": kind} for item in body["items"])
    return listed


def test_case_table_against_real_crds(
    kube_server: envtest.KubeTestServer, argocd_namespace: str
) -> None:
    listed = create_all(kube_server, argocd_namespace)
    assert len(listed) == len(CASES)
    records = [argocd.record_from_object(obj) for obj in listed]
    index = ArgoIndex(record for record in records if record is not None)
    assert len(index) == len(CASES)
    wrong: list[str] = []
    for case in CASES:
        ref = ObjectRef(argocd.API_VERSION, case.kind, argocd_namespace, case.name)
        if isinstance(case.event, GitPush):
            targets = index.route(case.event).targets
        else:
            targets = index.route_image(case.event).targets
        if (ref in targets) is not case.refresh:
            wrong.append(f"{case.id}: expected refresh={case.refresh}")
    assert wrong == []


def test_refresh_patches_land_on_real_objects(
    kube_server: envtest.KubeTestServer, argocd_namespace: str
) -> None:
    """The merge patches are accepted by the real CRDs and set exactly Argo CD's annotations."""
    app, appset = CASES[0], next(case for case in CASES if case.kind == "ApplicationSet")
    for case in (app, appset):
        path = (
            f"/apis/{argocd.API_VERSION}/namespaces/{argocd_namespace}/{argocd.PLURALS[case.kind]}"
        )
        status, _ = kube_server.request("POST", path, body=case.manifest(argocd_namespace))
        assert status == 201
        patch = argocd.refresh_patch(case.kind, hard=False)
        status, body = kube_server.request(
            "PATCH",
            f"{path}/{case.name}",
            body=patch,
            content_type="application/merge-patch+json",
        )
        assert status == 200, body
        assert patch is not None
        assert body["metadata"]["annotations"] == patch["metadata"]["annotations"]
