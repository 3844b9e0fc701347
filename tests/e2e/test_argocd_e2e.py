"""Argo CD as a second target, end to end: the running service, the real API server with Argo
CD's own CRDs, signed webhooks in, Argo CD's refresh annotations out.

A push to /webhooks/github refreshes exactly the Applications and ApplicationSets Argo CD's
own handler would (annotation `argocd.argoproj.io/refresh` / `application-set-refresh`), in
the same request as the Flux objects of the same repository; a Harbor push refreshes the
Applications whose Helm chart names the artifact; the refresh goes through the reconcile
queue (retried on 5xx); an Application reports the commit status of the push as Argo CD's
status moves.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from structlog.testing import capture_logs

from receiver.app import App
from tests import envtest
from tests.support import delivery_fixtures, faultproxy, flux
from tests.support.argocd_fixtures import fetch_crds
from tests.support.forges import EmulatedGitHub
from tests.support.running import eventually, kube, running_app

TOKEN = "argocd-e2e-hook-secret"
HARBOR_TOKEN = "harbor-webhook-token"
API_TOKEN = "ghp-argocd-e2e"
REFRESH = "argocd.argoproj.io/refresh"
SET_REFRESH = "argocd.argoproj.io/application-set-refresh"
REQUESTED_AT = "reconcile.fluxcd.io/requestedAt"
APPS = "/apis/argoproj.io/v1alpha1/namespaces/{ns}/applications"
SETS = "/apis/argoproj.io/v1alpha1/namespaces/{ns}/applicationsets"
SOURCE = "/apis/source.toolkit.fluxcd.io/v1/namespaces/{ns}/gitrepositories"
KUSTOMIZE = "/apis/kustomize.toolkit.fluxcd.io/v1/namespaces/{ns}/kustomizations"
DESTINATION = {"server": "https://kubernetes.default.svc", "namespace": "default"}
SHA = "e5" * 20


def application(name: str, source: dict[str, Any], *, paths: str | None = None) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name}
    if paths is not None:
        metadata["annotations"] = {"argocd.argoproj.io/manifest-generate-paths": paths}
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application",
        "metadata": metadata,
        "spec": {"project": "default", "destination": DESTINATION, "source": source},
    }


def application_set(name: str, repo: str, revision: str) -> dict[str, Any]:
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "ApplicationSet",
        "metadata": {"name": name},
        "spec": {
            "generators": [
                {"git": {"repoURL": repo, "revision": revision, "directories": [{"path": "*"}]}}
            ],
            "template": {
                "metadata": {"name": "{{path.basename}}"},
                "spec": {
                    "project": "default",
                    "destination": DESTINATION,
                    "source": {"repoURL": repo, "path": "{{path}}", "targetRevision": revision},
                },
            },
        },
    }


COLLECTIONS = {"Application": APPS, "ApplicationSet": SETS}
COLLECTIONS |= {"GitRepository": SOURCE, "Kustomization": KUSTOMIZE}


async def create(server: envtest.KubeTestServer, ns: str, *bodies: dict[str, Any]) -> None:
    for body in bodies:
        await kube(server, "POST", COLLECTIONS[body["kind"]].format(ns=ns), body=body)


async def secret(server: envtest.KubeTestServer, ns: str, data: dict[str, str]) -> None:
    encoded = {key: base64.b64encode(value.encode()).decode() for key, value in data.items()}
    await kube(
        server,
        "POST",
        f"/api/v1/namespaces/{ns}/secrets",
        body={"metadata": {"name": "hooks"}, "data": encoded},
    )


def discovery(ns: str) -> dict[str, Any]:
    def ref(key: str) -> dict[str, Any]:
        return {"secret_ref": {"namespace": ns, "name": "hooks", "key": key}}

    return {
        "endpoints": {"github": ref("github"), "harbor": ref("harbor")},
        "downstream": True,
        "namespaces": [ns],
    }


def github_push(repo: str, ref: str, changed: list[str] | None) -> tuple[bytes, dict[str, str]]:
    commits = [] if changed is None else [{"added": [], "modified": changed, "removed": []}]
    body = json.dumps(
        {
            "ref": ref,
            "before": "1" * 40,
            "after": SHA,
            "repository": {
                "clone_url": f"https://github.test/{repo}.git",
                "ssh_url": f"git@github.test:{repo}.git",
                "html_url": f"https://github.test/{repo}",
                "full_name": repo,
                "default_branch": "main",
            },
            "commits": commits,
        }
    ).encode()
    digest = hmac.new(TOKEN.encode(), body, hashlib.sha256).hexdigest()
    return body, {
        "X-GitHub-Event": "push",
        "X-GitHub-Delivery": digest[:16],
        "X-Hub-Signature-256": f"sha256={digest}",
    }


async def post(app: App, endpoint: str, body: bytes, headers: dict[str, str]) -> dict[str, Any]:
    url = f"http://127.0.0.1:{app.ports['webhook']}/webhooks/{endpoint}"
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, data=body, headers=headers) as response,
    ):
        assert response.status == 200, await response.text()
        answer: dict[str, Any] = await response.json()
        return answer


async def annotations(server: envtest.KubeTestServer, collection: str) -> dict[str, dict[str, str]]:
    listing = await kube(server, "GET", collection)
    return {
        item["metadata"]["name"]: item["metadata"].get("annotations") or {}
        for item in listing["items"]
    }


async def inspector_objects(app: App) -> dict[str, tuple[str, str | None, str | None]]:
    """kind/name -> (decision, cause, patch) of the latest delivery, from the inspector's API."""
    url = f"http://127.0.0.1:{app.ports['health']}/api/deliveries"
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        assert response.status == 200
        latest = (await response.json())["deliveries"][0]
    return {
        f"{o['kind']}/{o['name']}": (o["decision"], o["cause"], o["patch"])
        for o in latest["objects"]
    }


async def indexed(app: App, count: int) -> None:
    async def probe() -> int:
        return len(app.discovery.argocd)

    await eventually(probe, check=lambda n: n == count)


@pytest.fixture
async def hooks(kube_server: envtest.KubeTestServer, argocd_namespace: str) -> str:
    await secret(kube_server, argocd_namespace, {"github": TOKEN, "harbor": HARBOR_TOKEN})
    return argocd_namespace


async def test_push_refreshes_exactly_the_matching_argocd_objects(
    kube_server: envtest.KubeTestServer, hooks: str
) -> None:
    ns = hooks
    repo = f"https://github.test/acme/{ns}.git"
    for body in (
        application("head", {"repoURL": repo, "path": "apps/web", "targetRevision": "HEAD"}),
        application("dev", {"repoURL": repo, "path": "apps/web", "targetRevision": "dev"}),
        application(
            "web-only", {"repoURL": repo, "path": "apps/web", "targetRevision": "main"}, paths="."
        ),
        application("api-only", {"repoURL": repo, "path": "apps/api"}, paths=".;/common"),
        application_set("set-head", repo, "HEAD"),
        application_set("set-rc", repo, "rc"),
    ):
        await create(kube_server, ns, body)
    async with running_app(kubeconfig=kube_server.kubeconfig_path, discovery=discovery(ns)) as app:
        await indexed(app, 6)
        body, headers = github_push(f"acme/{ns}", "refs/heads/main", ["apps/api/deploy.yaml"])
        answer = await post(app, "github", body, headers)
        assert answer == {"status": "accepted", "targets": 3, "skipped": 3}
        await app.queue.settle()
        apps = await annotations(kube_server, APPS.format(ns=ns))
        sets = await annotations(kube_server, SETS.format(ns=ns))
        inspected = await inspector_objects(app)
    # The inspector shows the Argo CD objects like Flux ones: decision, cause, patch outcome.
    assert inspected == {
        "Application/head": ("reconcile", None, "patched"),
        "Application/api-only": ("reconcile", None, "patched"),
        "ApplicationSet/set-head": ("reconcile", None, "patched"),
        "Application/dev": ("skip", "ref", None),
        "Application/web-only": ("skip", "path", None),
        "ApplicationSet/set-rc": ("skip", "ref", None),
    }
    assert {name: a.get(REFRESH) for name, a in apps.items()} == {
        "head": "normal",
        "dev": None,
        "web-only": None,
        "api-only": "normal",
    }
    assert {name: a.get(SET_REFRESH) for name, a in sets.items()} == {
        "set-head": "true",
        "set-rc": None,
    }


async def test_one_push_refreshes_flux_and_argocd_objects_together(
    kube_server: envtest.KubeTestServer, hooks: str
) -> None:
    """A mixed cluster: the GitRepository, its Kustomization, an Application and an
    ApplicationSet of one repository, all from one delivery."""
    ns = hooks
    repo = f"https://github.test/acme/{ns}"
    await create(
        kube_server,
        ns,
        {
            "apiVersion": "source.toolkit.fluxcd.io/v1",
            "kind": "GitRepository",
            "metadata": {"name": "fleet"},
            "spec": {"url": repo, "interval": "10m", "ref": {"branch": "main"}},
        },
    )
    await create(
        kube_server,
        ns,
        {
            "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
            "kind": "Kustomization",
            "metadata": {"name": "apps"},
            "spec": {
                "sourceRef": {"kind": "GitRepository", "name": "fleet"},
                "path": "./apps",
                "interval": "10m",
                "prune": False,
            },
        },
    )
    ssh = f"git@github.test:acme/{ns}.git"
    await create(
        kube_server,
        ns,
        application("web", {"repoURL": ssh, "path": "apps", "targetRevision": "main"}),
    )
    await create(kube_server, ns, application_set("all", repo, "HEAD"))
    async with running_app(kubeconfig=kube_server.kubeconfig_path, discovery=discovery(ns)) as app:
        await indexed(app, 2)

        async def flux_indexed() -> int:
            return len(app.discovery.git) + len(app.discovery.readers)

        await eventually(flux_indexed, check=lambda n: n == 2)
        body, headers = github_push(f"acme/{ns}", "refs/heads/main", None)
        answer = await post(app, "github", body, headers)
        assert answer == {"status": "accepted", "targets": 4, "skipped": 0}
        await app.queue.settle()
        flux = {
            **await annotations(kube_server, SOURCE.format(ns=ns)),
            **await annotations(kube_server, KUSTOMIZE.format(ns=ns)),
        }
        apps = await annotations(kube_server, APPS.format(ns=ns))
        sets = await annotations(kube_server, SETS.format(ns=ns))
    assert set(flux) == {"fleet", "apps"}
    assert all(REQUESTED_AT in a for a in flux.values())
    assert apps["web"] == {REFRESH: "normal"}
    assert sets["all"] == {SET_REFRESH: "true"}


async def test_hard_refresh_is_an_option(kube_server: envtest.KubeTestServer, hooks: str) -> None:
    ns = hooks
    repo = f"https://github.test/acme/{ns}"
    await create(kube_server, ns, application("web", {"repoURL": repo, "path": "apps"}))
    async with running_app(
        kubeconfig=kube_server.kubeconfig_path,
        discovery=discovery(ns),
        argocd={"hard_refresh": True},
    ) as app:
        await indexed(app, 1)
        body, headers = github_push(f"acme/{ns}", "refs/heads/main", None)
        assert (await post(app, "github", body, headers))["targets"] == 1
        await app.queue.settle()
        apps = await annotations(kube_server, APPS.format(ns=ns))
    assert apps["web"] == {REFRESH: "hard"}


async def test_disabled_argocd_support_watches_nothing(
    kube_server: envtest.KubeTestServer, hooks: str
) -> None:
    ns = hooks
    await create(
        kube_server,
        ns,
        application("web", {"repoURL": f"https://github.test/acme/{ns}", "path": "apps"}),
    )
    async with running_app(
        kubeconfig=kube_server.kubeconfig_path, discovery=discovery(ns), argocd={"enabled": False}
    ) as app:
        body, headers = github_push(f"acme/{ns}", "refs/heads/main", None)
        answer = await post(app, "github", body, headers)
    assert answer["targets"] == 0
    assert len(app.discovery.argocd) == 0


async def test_harbor_push_refreshes_applications_of_the_chart(
    kube_server: envtest.KubeTestServer, hooks: str
) -> None:
    """The Harbor fixture pushes harbor.example.com:8443/platform/podinfo:1.4.2."""
    ns = hooks
    for body in (
        application(
            "chart-in-range",
            {
                "repoURL": "harbor.example.com:8443/platform",
                "chart": "podinfo",
                "targetRevision": "~1.4.0",
            },
        ),
        application(
            "oci-exact",
            {
                "repoURL": "oci://harbor.example.com:8443/platform/podinfo",
                "targetRevision": "1.4.2",
                "path": ".",
            },
        ),
        application(
            "chart-older",
            {
                "repoURL": "harbor.example.com:8443/platform",
                "chart": "podinfo",
                "targetRevision": "1.3.0",
            },
        ),
    ):
        await create(kube_server, ns, body)
    async with running_app(kubeconfig=kube_server.kubeconfig_path, discovery=discovery(ns)) as app:
        await indexed(app, 3)
        delivery = delivery_fixtures.load("harbor", "push_artifact")
        answer = await post(app, "harbor", delivery.body, dict(delivery.headers))
        assert answer == {"status": "accepted", "targets": 2, "skipped": 1}
        await app.queue.settle()
        apps = await annotations(kube_server, APPS.format(ns=ns))
    assert {name: a.get(REFRESH) for name, a in apps.items()} == {
        "chart-in-range": "normal",
        "oci-exact": "normal",
        "chart-older": None,
    }


async def test_refresh_is_retried_like_a_flux_patch(
    kube_server: envtest.KubeTestServer,
    hooks: str,
    fault_proxy: faultproxy.FaultProxy,
) -> None:
    ns = hooks
    await create(
        kube_server,
        ns,
        application("web", {"repoURL": f"https://github.test/acme/{ns}", "path": "apps"}),
    )
    assert fault_proxy.kubeconfig_path is not None
    async with running_app(
        kubeconfig=fault_proxy.kubeconfig_path,
        discovery=discovery(ns),
        trigger={"retry_initial_s": 0.01, "retry_max_s": 0.05},
    ) as app:
        await indexed(app, 1)
        fault_proxy.fail_next(
            2, status=503, match=lambda method, path: method == "PATCH" and "/applications/" in path
        )
        body, headers = github_push(f"acme/{ns}", "refs/heads/main", None)
        assert (await post(app, "github", body, headers))["targets"] == 1
        await app.queue.settle()
        apps = await annotations(kube_server, APPS.format(ns=ns))
        retries = app.metrics.registry.get_sample_value(
            "gitops_receiver_patch_retries_total", {"kind": "Application"}
        )
    patches = fault_proxy.requests_matching("PATCH", "/applications/web")
    assert [r.injected_status for r in patches] == [503, 503, None]
    assert patches[-1].json() == {"metadata": {"annotations": {REFRESH: "normal"}}}
    assert retries == 2
    assert apps["web"] == {REFRESH: "normal"}


@pytest.fixture
async def github() -> AsyncIterator[EmulatedGitHub]:
    forge = EmulatedGitHub(token=API_TOKEN, projects={"acme/fleet"})
    await forge.start()
    try:
        yield forge
    finally:
        await forge.close()


async def test_application_reports_the_commit_status_of_the_push(
    kube_server: envtest.KubeTestServer, hooks: str, github: EmulatedGitHub, tmp_path: Path
) -> None:
    """pending on the push, then running while Argo CD syncs, success once synced and healthy
    (Argo CD writes the Application's status on the object itself: no status subresource)."""
    ns = hooks
    await kube(
        kube_server,
        "PATCH",
        f"/api/v1/namespaces/{ns}/secrets/hooks",
        content_type="application/merge-patch+json",
        body={"data": {"api": base64.b64encode(API_TOKEN.encode()).decode()}},
    )
    await create(
        kube_server,
        ns,
        application("web", {"repoURL": "https://github.test/acme/fleet", "targetRevision": "main"}),
    )
    status = {
        "cluster": "e2e",
        "forges": [
            {
                "kind": "github",
                "host": "github.test",
                "api_base_url": github.base_url,
                "token_secret_ref": {"namespace": ns, "name": "hooks", "key": "api"},
            }
        ],
    }
    name = f"flux/e2e/Application/{ns}/web"

    async def states() -> list[str]:
        return github.states(name=name)

    async with running_app(
        kubeconfig=kube_server.kubeconfig_path, discovery=discovery(ns), status=status
    ) as app:
        await indexed(app, 1)
        body, headers = github_push("acme/fleet", "refs/heads/main", None)
        assert (await post(app, "github", body, headers))["targets"] == 1
        await eventually(states, check=lambda s: s == ["pending"])
        app_path = APPS.format(ns=ns) + "/web"
        for argo_status in (
            {
                "operationState": {
                    "phase": "Running",
                    "operation": {"sync": {"revision": SHA}},
                    "startedAt": "2026-11-30T10:00:00Z",
                }
            },
            {
                "operationState": {
                    "phase": "Succeeded",
                    "operation": {"sync": {"revision": SHA}},
                    "syncResult": {"revision": SHA},
                    "startedAt": "2026-11-30T10:00:00Z",
                },
                "sync": {"status": "Synced", "revision": SHA},
                "health": {"status": "Healthy"},
            },
        ):
            await kube(
                kube_server,
                "PATCH",
                app_path,
                content_type="application/merge-patch+json",
                body={"status": argo_status},
            )
            await asyncio.sleep(0)
        # GitHub has no `running`: pending, pending (syncing), success.
        await eventually(states, check=lambda s: s[-1:] == ["success"])
    assert github.states(name=name)[0] == "pending"
    assert all(call.raw_path.endswith(f"/statuses/{SHA}") for call in github.calls)
    assert all(call.headers["Authorization"] == f"Bearer {API_TOKEN}" for call in github.calls)


ROOT = Path(__file__).resolve().parents[2]


def routes_cli(*args: str) -> dict[str, Any]:
    result = subprocess.run(
        [sys.executable, "-m", "receiver.cli", "routes", *args, "-o", "json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    report: dict[str, Any] = json.loads(result.stdout)
    return report


async def test_routes_explains_argocd_objects_of_the_live_cluster(
    kube_server: envtest.KubeTestServer, argocd_namespace: str
) -> None:
    ns = argocd_namespace
    repo = f"https://gitlab.example.com/{ns}/fleet.git"
    for body in (
        application("head", {"repoURL": repo, "path": "apps"}),
        application("staging", {"repoURL": repo, "path": "apps", "targetRevision": "staging"}),
    ):
        body["metadata"]["labels"] = {"sync": "fast"}
        await create(kube_server, ns, body)
    await create(kube_server, ns, application_set("set", repo, "HEAD"))
    report = routes_cli(
        "--kubeconfig",
        str(kube_server.kubeconfig_path),
        "--repo",
        f"git@gitlab.example.com:{ns}/fleet",
        "--ref",
        "main",
        "--default-branch",
        "main",
        "--label-selector",
        "sync=fast",
    )
    rows = {row["object"]: (row["cause"], row["spec_ref"]) for row in report["objects"]}
    assert rows == {
        f"Application/{ns}/head": ("match", "targetRevision HEAD"),
        f"Application/{ns}/staging": ("ref", "targetRevision staging"),
        f"ApplicationSet/{ns}/set": ("selector", "revision HEAD"),
    }
    assert report["reconcile"] == [f"Application/{ns}/head"]


def test_routes_and_dry_run_read_argocd_objects_from_the_inventory(tmp_path: Path) -> None:
    (tmp_path / "objects.yaml").write_text(
        "\n---\n".join(
            json.dumps(document)
            for document in (
                {
                    "apiVersion": "source.toolkit.fluxcd.io/v1",
                    "kind": "GitRepository",
                    "metadata": {"name": "fleet", "namespace": "flux-system"},
                    "spec": {"url": "https://github.com/example/fleet", "ref": {"branch": "main"}},
                },
                {
                    **application(
                        "web",
                        {"repoURL": "https://github.com/example/fleet.git", "path": "apps/web"},
                        paths=".",
                    ),
                    "metadata": {
                        "name": "web",
                        "namespace": "argocd",
                        "annotations": {"argocd.argoproj.io/manifest-generate-paths": "."},
                    },
                },
            )
        )
    )
    common = ["--inventory", str(tmp_path), "--repo", "https://github.com/example/fleet"]
    hit = routes_cli(*common, "--ref", "main", "--changed", "apps/web/a.yaml")
    assert hit["reconcile"] == ["GitRepository/flux-system/fleet", "Application/argocd/web"]
    miss = routes_cli(*common, "--ref", "main", "--changed", "apps/api/a.yaml")
    assert miss["reconcile"] == ["GitRepository/flux-system/fleet"]
    (row,) = [row for row in miss["objects"] if row["object"] == "Application/argocd/web"]
    assert (row["cause"], row["paths"]) == ("path", "apps/web")


async def test_dry_run_logs_the_refresh_patch(tmp_path: Path) -> None:
    (tmp_path / "objects.yaml").write_text(
        "\n---\n".join(
            json.dumps(document)
            for document in (
                {
                    "apiVersion": "v1",
                    "kind": "Secret",
                    "metadata": {"name": "hooks", "namespace": "argocd"},
                    "data": {"github": base64.b64encode(TOKEN.encode()).decode()},
                },
                {
                    **application("web", {"repoURL": "https://github.test/acme/fleet"}),
                    "metadata": {"name": "web", "namespace": "argocd"},
                },
            )
        )
    )
    endpoint = {"secret_ref": {"namespace": "argocd", "name": "hooks", "key": "github"}}
    with capture_logs() as entries:
        async with running_app(
            kubeconfig=None, inventory=tmp_path, discovery={"endpoints": {"github": endpoint}}
        ) as app:
            body, headers = github_push("acme/fleet", "refs/heads/main", None)
            assert (await post(app, "github", body, headers))["targets"] == 1
            await app.queue.settle()
    patches = [entry for entry in entries if entry["event"] == "dry_run_patch"]
    assert [(p["target"], p["patch"]) for p in patches] == [
        ("Application/argocd/web", {"metadata": {"annotations": {REFRESH: "normal"}}})
    ]


async def test_argocd_installed_after_start_up_is_picked_up(
    argocd_crds: list[envtest.CrdInfo], flux_build: flux.FluxBuild
) -> None:
    """A cluster without Argo CD: Flux alone, then Argo CD's CRDs appear and the next
    re-check starts the watches, so a push refreshes the new Application."""
    binaries = envtest.locate_binaries(build=False)
    folder = fetch_crds()
    assert not isinstance(binaries, str) and not isinstance(folder, str)
    with envtest.running_server(binaries=binaries, crd_dirs=flux.crd_dirs(flux_build)) as server:
        ns = "argocd"
        await kube(server, "POST", "/api/v1/namespaces", body={"metadata": {"name": ns}})
        await secret(server, ns, {"github": TOKEN, "harbor": HARBOR_TOKEN})
        async with running_app(
            kubeconfig=server.kubeconfig_path,
            discovery=discovery(ns),
            argocd={"recheck_interval_s": 0.2},
        ) as app:
            body, headers = github_push("acme/late", "refs/heads/main", None)
            assert (await post(app, "github", body, headers))["targets"] == 0
            await asyncio.to_thread(
                envtest.install_crds, kubeconfig_path=server.kubeconfig_path, crd_dirs=[folder]
            )
            await create(
                server, ns, application("web", {"repoURL": "https://github.test/acme/late"})
            )
            await indexed(app, 1)
            body, headers = github_push("acme/late", "refs/heads/main", ["a.yaml"])
            assert (await post(app, "github", body, headers))["targets"] == 1
            await app.queue.settle()
            apps = await annotations(server, APPS.format(ns=ns))
    assert apps["web"] == {REFRESH: "normal"}


async def test_source_hydrator_dry_push_also_asks_for_hydration(
    kube_server: envtest.KubeTestServer, hooks: str
) -> None:
    """As Argo CD's handler: a push moving the dry source sets `hydrate: normal` beside the
    refresh; a push to the hydrated branch only refreshes."""
    ns = hooks
    repo = f"https://github.test/acme/{ns}"

    def hydrated(name: str, dry_revision: str, sync_branch: str) -> dict[str, Any]:
        body = application(name, {"repoURL": repo})
        del body["spec"]["source"]
        body["spec"]["sourceHydrator"] = {
            "drySource": {"repoURL": repo, "targetRevision": dry_revision, "path": "dry"},
            "syncSource": {"targetBranch": sync_branch, "path": "prod"},
        }
        return body

    await create(
        kube_server,
        ns,
        hydrated("dry-moved", "main", "env/a"),
        hydrated("sync-moved", "dev", "main"),
    )
    async with running_app(kubeconfig=kube_server.kubeconfig_path, discovery=discovery(ns)) as app:
        await indexed(app, 2)
        body, headers = github_push(f"acme/{ns}", "refs/heads/main", ["dry/x.yaml", "prod/y.yaml"])
        assert (await post(app, "github", body, headers))["targets"] == 2
        await app.queue.settle()
        apps = await annotations(kube_server, APPS.format(ns=ns))
    assert apps == {
        "dry-moved": {REFRESH: "normal", "argocd.argoproj.io/hydrate": "normal"},
        "sync-moved": {REFRESH: "normal"},
    }
