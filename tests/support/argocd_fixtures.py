"""Argo CD's own Application and ApplicationSet CRDs in the test API server.

`argocd_crds` takes the CRDs from Argo CD's Go module (`scripts/fetch-argocd-crds.sh`, cached
in ~/.cache/gitops-receiver/argocd/ outside the repository) and installs them once per session
into `kube_server`; without Go or the module proxy it skips with one line, or fails under
CI=true. `argocd_namespace` gives a test a fresh namespace whose Argo CD objects are purged
afterwards (the envtest purge knows only the CRDs in tests/crds).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import envtest

ARGOCD_VERSION = "v3.5.7"
FETCH_SCRIPT = envtest.REPO_ROOT / "scripts" / "fetch-argocd-crds.sh"
FETCH_TIMEOUT_S = 1800
CRD_FILES = ("application-crd.yaml", "applicationset-crd.yaml")


def fetch_crds() -> Path | str:
    """The folder holding Argo CD's two CRD files, or the reason they cannot be had."""
    if shutil.which("go") is None:
        return f"no Go toolchain to take Argo CD {ARGOCD_VERSION}'s CRDs from its Go module"
    result = subprocess.run(
        ["bash", str(FETCH_SCRIPT), ARGOCD_VERSION],
        capture_output=True,
        text=True,
        timeout=FETCH_TIMEOUT_S,
        env=dict(os.environ),
        check=False,
    )
    lines = result.stdout.strip().splitlines()
    if result.returncode != 0 or not lines:
        return f"{FETCH_SCRIPT.name} failed: {result.stderr.strip()[-500:]}"
    folder = Path(lines[-1])
    missing = [name for name in CRD_FILES if not (folder / name).is_file()]
    return f"{folder} lacks {missing}" if missing else folder


@pytest.fixture(scope="session")
def argocd_crds(kube_server: envtest.KubeTestServer) -> list[envtest.CrdInfo]:
    """Argo CD's real CRDs, installed (Established, served, listable) in the session server."""
    found = fetch_crds()
    if isinstance(found, str):
        if envtest.ci_requires_cluster():
            pytest.fail(f"CI=true but {found}", pytrace=False)
        pytest.skip(found)
    return envtest.install_crds(kubeconfig_path=kube_server.kubeconfig_path, crd_dirs=[found])


@pytest.fixture
def argocd_namespace(
    kube_server: envtest.KubeTestServer, argocd_crds: list[envtest.CrdInfo]
) -> Iterator[str]:
    """A fresh namespace; its Applications and ApplicationSets are deleted with it."""
    name = kube_server.create_namespace(prefix="argo-")
    try:
        yield name
    finally:
        for crd in argocd_crds:
            kube_server.request(
                "DELETE", f"/apis/{crd.group}/{crd.storage_version}/namespaces/{name}/{crd.plural}"
            )
        kube_server.delete_namespace(name)
