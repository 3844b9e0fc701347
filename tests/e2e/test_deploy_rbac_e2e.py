"""deploy/ against a real API server: the manifests validate, and the App runs on the RBAC.

The ServiceAccount, ClusterRole and ClusterRoleBinding of deploy/ are applied as they are
(moved to the test namespace, as a kustomize overlay would), a token is requested for the
ServiceAccount, and the real App runs with that token: every watch must complete its first
list, Receiver status must be written, and a push must patch the named Flux objects, with
no more rights than the ClusterRole grants (the API server enforces RBAC).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from tests import envtest
from tests.support.running import eventually, kube, running_app

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
RBAC = "/apis/rbac.authorization.k8s.io/v1"
SOURCE = "/apis/source.toolkit.fluxcd.io/v1"
NOTIFICATION = "/apis/notification.toolkit.fluxcd.io/v1"
REQUESTED_AT = "reconcile.fluxcd.io/requestedAt"
TOKEN = "deploy-rbac-token"
COLLECTIONS = {
    "ServiceAccount": "/api/v1/namespaces/{ns}/serviceaccounts",
    "ConfigMap": "/api/v1/namespaces/{ns}/configmaps",
    "Service": "/api/v1/namespaces/{ns}/services",
    "Deployment": "/apis/apps/v1/namespaces/{ns}/deployments",
    "NetworkPolicy": "/apis/networking.k8s.io/v1/namespaces/{ns}/networkpolicies",
    "PodDisruptionBudget": "/apis/policy/v1/namespaces/{ns}/poddisruptionbudgets",
    "Role": RBAC + "/namespaces/{ns}/roles",
    "RoleBinding": RBAC + "/namespaces/{ns}/rolebindings",
    "ClusterRole": RBAC + "/clusterroles",
    "ClusterRoleBinding": RBAC + "/clusterrolebindings",
}
# The Flux kinds discovery and commit statuses can watch (receiver/app.py `_discovery_feeds`).
WATCHABLE_FLUX_PLURALS = {
    "gitrepositories",
    "ocirepositories",
    "helmrepositories",
    "imagerepositories",
    "kustomizations",
    "helmreleases",
}
PUSH = json.dumps(
    {
        "ref": "refs/heads/main",
        "before": "1" * 40,
        "after": "2" * 40,
        "repository": {"clone_url": "https://github.com/org/fleet.git", "default_branch": "main"},
        "commits": [{"added": [], "modified": ["apps/a.yaml"], "removed": []}],
    }
).encode()


def deploy_documents(*names: str) -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for name in names:
        docs.extend(d for d in yaml.safe_load_all((DEPLOY / name).read_text()) if d)
    return docs


def into_namespace(doc: dict[str, Any], namespace: str) -> dict[str, Any]:
    """The document moved to `namespace`; cluster-scoped names get it as a suffix."""
    doc = json.loads(json.dumps(doc))
    if doc["kind"] in ("ClusterRole", "ClusterRoleBinding"):
        doc["metadata"]["name"] = f"gitops-receiver-{namespace}"
    else:
        doc["metadata"]["namespace"] = namespace
    if doc["kind"] == "ClusterRoleBinding":
        doc["roleRef"]["name"] = f"gitops-receiver-{namespace}"
    if doc["kind"] in ("ClusterRoleBinding", "RoleBinding"):
        for subject in doc["subjects"]:
            subject["namespace"] = namespace
    return doc


def collection(doc: dict[str, Any], namespace: str) -> str:
    return COLLECTIONS[doc["kind"]].format(ns=namespace)


async def create(server: envtest.KubeTestServer, path: str, body: dict[str, Any]) -> Any:
    return await kube(server, "POST", path, body=body)


@pytest.fixture
async def service_account_kubeconfig(
    kube_server: envtest.KubeTestServer, namespace: str, tmp_path: Path
) -> AsyncIterator[Path]:
    """A kubeconfig holding a token of deploy/'s ServiceAccount, bound to deploy/'s ClusterRole."""
    docs = [
        into_namespace(d, namespace) for d in deploy_documents("serviceaccount.yaml", "rbac.yaml")
    ]
    cluster_scoped = [d for d in docs if d["kind"].startswith("Cluster")]
    try:
        for doc in docs:
            await create(kube_server, collection(doc, namespace), doc)
        [account] = [d["metadata"]["name"] for d in docs if d["kind"] == "ServiceAccount"]
        request = await create(
            kube_server,
            f"/api/v1/namespaces/{namespace}/serviceaccounts/{account}/token",
            {
                "apiVersion": "authentication.k8s.io/v1",
                "kind": "TokenRequest",
                "spec": {"expirationSeconds": 3600},
            },
        )
        path = envtest.write_kubeconfig(
            tmp_path / "service-account.kubeconfig",
            server=kube_server.url,
            token=request["status"]["token"],
            ca_path=kube_server.ca_path,
            namespace=namespace,
        )
        yield path
    finally:
        for doc in cluster_scoped:
            await delete(kube_server, f"{collection(doc, namespace)}/{doc['metadata']['name']}")


async def delete(server: envtest.KubeTestServer, path: str) -> None:
    status, body = await asyncio.to_thread(server.request, "DELETE", path)
    assert status in (200, 404), body


async def allowed(account: envtest.KubeHttp, verb: str, group: str, resource: str) -> bool:
    """What the API server's authorizer answers for this ServiceAccount, cluster-wide."""
    review = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SelfSubjectAccessReview",
        "spec": {"resourceAttributes": {"verb": verb, "group": group, "resource": resource}},
    }
    status, body = await asyncio.to_thread(
        account.request,
        "POST",
        "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
        body=review,
    )
    assert status == 201, body
    return bool(body["status"]["allowed"])


async def test_every_manifest_passes_strict_server_side_validation(
    kube_server: envtest.KubeTestServer, namespace: str
) -> None:
    names = yaml.safe_load((DEPLOY / "kustomization.yaml").read_text())["resources"]
    for doc in (into_namespace(d, namespace) for d in deploy_documents(*names)):
        query = "?dryRun=All&fieldValidation=Strict"
        created = await create(kube_server, collection(doc, namespace) + query, doc)
        assert created["kind"] == doc["kind"]


async def test_the_app_runs_on_the_deployed_cluster_role(
    kube_server: envtest.KubeTestServer, namespace: str, service_account_kubeconfig: Path
) -> None:
    # The token really is the ServiceAccount's, not an admin's: anything else is refused.
    as_account = envtest.KubeHttp.from_kubeconfig(service_account_kubeconfig)
    status, _ = as_account.request("GET", f"/api/v1/namespaces/{namespace}/configmaps")
    assert status == 403

    token = base64.b64encode(TOKEN.encode()).decode()
    await create(
        kube_server,
        f"/api/v1/namespaces/{namespace}/secrets",
        {"metadata": {"name": "webhook-token"}, "data": {"token": token}},
    )
    await create(
        kube_server,
        f"{SOURCE}/namespaces/{namespace}/gitrepositories",
        {
            "apiVersion": "source.toolkit.fluxcd.io/v1",
            "kind": "GitRepository",
            "metadata": {"name": "fleet"},
            "spec": {"url": "https://github.com/org/fleet", "interval": "10m"},
        },
    )
    await create(
        kube_server,
        f"{SOURCE}/namespaces/{namespace}/helmcharts",
        {
            "apiVersion": "source.toolkit.fluxcd.io/v1",
            "kind": "HelmChart",
            "metadata": {"name": "chart", "labels": {"team": "a"}},
            "spec": {
                "chart": "podinfo",
                "interval": "10m",
                "sourceRef": {"kind": "GitRepository", "name": "fleet"},
            },
        },
    )
    await create(
        kube_server,
        f"{NOTIFICATION}/namespaces/{namespace}/receivers",
        {
            "apiVersion": "notification.toolkit.fluxcd.io/v1",
            "kind": "Receiver",
            "metadata": {"name": "gh"},
            "spec": {
                "type": "github",
                "events": ["push"],
                "secretRef": {"name": "webhook-token"},
                "resources": [
                    {"kind": "GitRepository", "name": "fleet"},
                    {"kind": "HelmChart", "name": "*", "matchLabels": {"team": "a"}},
                ],
            },
        },
    )
    # Discovery endpoints for a forge and a registry, with downstream: every kind the App
    # can watch is watched (Receivers, Secrets, GitRepositories, Kustomizations, HelmReleases,
    # ImageRepositories, OCIRepositories, HelmRepositories). A 403 on any of them would keep
    # that watch from its first list and running_app from getting ready.
    secret_ref = {"namespace": namespace, "name": "webhook-token", "key": "token"}
    discovery = {
        "endpoints": {"github": {"secret_ref": secret_ref}, "harbor": {"secret_ref": secret_ref}},
        "downstream": True,
    }
    # deploy/'s Lease, in the namespace the Role was moved to, renewed fast to exercise patch.
    leader_election = {
        "namespace": namespace,
        "lease_name": "gitops-receiver-leader",
        "lease_duration_s": 3,
        "renew_deadline_s": 2,
        "retry_period_s": 0.3,
    }
    async with running_app(
        kubeconfig=service_account_kubeconfig,
        discovery=discovery,
        leader_election=leader_election,
    ) as app:
        lease_path = f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases"
        first = await eventually(
            lambda: kube(kube_server, "GET", f"{lease_path}/gitops-receiver-leader"),
            check=lambda lease: lease["spec"].get("holderIdentity") is not None,
        )
        await asyncio.sleep(1.0)  # several renews: get + patch allowed by the Role
        renewed = await kube(kube_server, "GET", f"{lease_path}/gitops-receiver-leader")
        assert app.elector is not None and app.leading()
        assert renewed["spec"]["holderIdentity"] == app.elector.identity
        assert renewed["spec"]["renewTime"] != first["spec"]["renewTime"]
        watches = {w.name.partition(".")[0] for w in app._watches}
        assert watches >= {"receivers", "secrets", *WATCHABLE_FLUX_PLURALS}, watches
        hook = "/hook/" + hashlib.sha256(f"{TOKEN}gh{namespace}".encode()).hexdigest()
        receiver = await eventually(
            lambda: kube(kube_server, "GET", f"{NOTIFICATION}/namespaces/{namespace}/receivers/gh"),
            check=lambda r: r.get("status", {}).get("webhookPath") == hook,
        )
        assert receiver["status"]["conditions"][-1]["status"] == "True"

        digest = hmac.new(TOKEN.encode(), PUSH, hashlib.sha256).hexdigest()
        headers = {
            "X-GitHub-Event": "push",
            "X-GitHub-Delivery": "deploy-rbac-1",
            "X-Hub-Signature-256": f"sha256={digest}",
            "Content-Type": "application/json",
        }
        url = f"http://127.0.0.1:{app.ports['webhook']}{hook}"
        async with (
            aiohttp.ClientSession() as session,
            session.post(url, data=PUSH, headers=headers) as response,
        ):
            assert response.status == 200, await response.text()
        for path in (
            f"{SOURCE}/namespaces/{namespace}/gitrepositories/fleet",
            f"{SOURCE}/namespaces/{namespace}/helmcharts/chart",
        ):
            patched = await eventually(
                lambda path=path: kube(kube_server, "GET", path),
                check=lambda o: REQUESTED_AT in (o["metadata"].get("annotations") or {}),
            )
            assert patched["metadata"]["annotations"][REQUESTED_AT]
        assert app.metrics.status_writes.labels("rejected")._value.get() == 0
        # Each landed patch's ReconcileRequested Event is allowed by the role (create events).
        assert app.events is not None
        await app.queue.settle()
        await app.events.settle()
        assert app.metrics.kube_events.labels("failed")._value.get() == 0
        assert app.metrics.kube_events.labels("created")._value.get() == 2
        # Readiness only proves the first lists; the watches that follow must be allowed too.
        watched = [w.name.partition(".") for w in app._watches]
        for plural, _, group in watched:
            assert await allowed(as_account, "watch", "" if group == "core" else group, plural), (
                plural
            )
        assert [w.name for w in app._watches if w.state.reconnects] == []
