"""Every object we ship or tell users to apply passes Flux's real CRDs (server-side dry run).

Sources: `config/examples/*.yaml`, the manifests of `deploy/` (what `kubectl apply -k deploy/`
applies), and every Kubernetes object in a YAML block of README.md, deploy/README.md and
docs/*.md. Each is server-side applied with `dryRun=All` against the test API server, where
Flux's real CRDs validate them (the shipped example once carried an scp-style `spec.url` that
the real GitRepository CRD refuses).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests import envtest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
FENCED_YAML = re.compile(r"```ya?ml\n(.*?)```", re.DOTALL)
# kustomize's own build file, read by kubectl, never sent to the API server.
NOT_API_OBJECTS = frozenset({"kustomize.config.k8s.io"})


def _documents(text: str) -> list[dict[str, Any]]:
    return [
        doc
        for doc in yaml.safe_load_all(text)
        if isinstance(doc, dict)
        and "apiVersion" in doc
        and "kind" in doc
        and str(doc["apiVersion"]).partition("/")[0] not in NOT_API_OBJECTS
    ]


def shipped_objects() -> list[tuple[str, dict[str, Any]]]:
    found: list[tuple[str, dict[str, Any]]] = []
    for path in sorted([*ROOT.glob("config/examples/*.yaml"), *ROOT.glob("deploy/*.yaml")]):
        found += [(str(path.relative_to(ROOT)), doc) for doc in _documents(path.read_text())]
    for path in [
        ROOT / "README.md",
        ROOT / "deploy" / "README.md",
        *sorted(ROOT.glob("docs/*.md")),
    ]:
        for block in FENCED_YAML.findall(path.read_text()):
            found += [(str(path.relative_to(ROOT)), doc) for doc in _documents(block)]
    return found


SHIPPED = shipped_objects()


def _resource_path(server: envtest.KubeTestServer, obj: dict[str, Any]) -> str:
    api_version = obj["apiVersion"]
    base = f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
    status, listing = server.request("GET", base)
    assert status == 200, f"{api_version} is not served: {listing}"
    resource = next(
        r for r in listing["resources"] if r["kind"] == obj["kind"] and "/" not in r["name"]
    )
    name = obj["metadata"]["name"]
    if resource["namespaced"]:
        namespace = obj["metadata"].get("namespace", "default")
        return f"{base}/namespaces/{namespace}/{resource['name']}/{name}"
    return f"{base}/{resource['name']}/{name}"


def test_there_are_shipped_objects_to_check() -> None:
    kinds = {doc["kind"] for _, doc in SHIPPED}
    assert {"GitRepository", "Kustomization", "Receiver", "Deployment"} <= kinds


@pytest.mark.parametrize(
    ("origin", "obj"),
    SHIPPED,
    ids=[f"{origin}:{doc['kind']}/{doc['metadata']['name']}" for origin, doc in SHIPPED],
)
def test_shipped_object_passes_the_real_crds(
    kube_server: envtest.KubeTestServer, origin: str, obj: dict[str, Any]
) -> None:
    namespace = obj["metadata"].get("namespace")
    if namespace:
        status, body = kube_server.request(
            "POST", "/api/v1/namespaces", body={"metadata": {"name": namespace}}
        )
        assert status in (201, 409), body
    path = _resource_path(kube_server, obj)
    status, body = kube_server.request(
        "PATCH",
        f"{path}?dryRun=All&fieldManager=shipped-objects&force=true",
        body=yaml.safe_dump(obj).encode(),
        content_type="application/apply-patch+yaml",
    )
    assert status in (200, 201), f"{origin}: {obj['kind']}/{obj['metadata']['name']}: {body}"
