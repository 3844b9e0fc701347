"""Auto-discovery end to end: one webhook per forge routed by URL, ref and changed paths to
exactly the GitRepositories it affects (and what reads them), against the real API server."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
import pytest

from receiver.app import App
from receiver.config import load
from receiver.errors import ConfigError
from tests import envtest
from tests.support.running import kube, running_app

TOKEN = "discovery-shared-secret"
REQUESTED_AT = "reconcile.fluxcd.io/requestedAt"
SOURCE = "/apis/source.toolkit.fluxcd.io/v1/namespaces/{ns}/gitrepositories"
KUSTOMIZATIONS = "/apis/kustomize.toolkit.fluxcd.io/v1/namespaces/{ns}/kustomizations"
HELMRELEASES = "/apis/helm.toolkit.fluxcd.io/v2/namespaces/{ns}/helmreleases"


@pytest.fixture
async def app(kube_server: envtest.KubeTestServer, namespace: str) -> AsyncIterator[App]:
    await kube(
        kube_server,
        "POST",
        f"/api/v1/namespaces/{namespace}/secrets",
        body={
            "metadata": {"name": "forge-secret"},
            "data": {"token": base64.b64encode(TOKEN.encode()).decode()},
        },
    )
    ref = {"secret_ref": {"namespace": namespace, "name": "forge-secret"}}
    async with running_app(
        kubeconfig=kube_server.kubeconfig_path,
        discovery={
            "endpoints": {"github": ref, "gitlab": ref, "generic": ref},
            "downstream": True,
            "namespaces": [namespace],
        },
    ) as running:
        yield running


async def gitrepo(
    server: envtest.KubeTestServer,
    ns: str,
    name: str,
    url: str,
    ref: dict[str, str] | None = None,
    *,
    paths: str | None = None,
    suspend: bool = False,
) -> None:
    metadata: dict[str, Any] = {"name": name}
    if paths is not None:
        metadata["annotations"] = {"gitops-receiver.io/paths": paths}
    spec: dict[str, Any] = {"url": url, "interval": "10m", "suspend": suspend}
    if ref is not None:
        spec["ref"] = ref
    await kube(
        server,
        "POST",
        SOURCE.format(ns=ns),
        body={
            "apiVersion": "source.toolkit.fluxcd.io/v1",
            "kind": "GitRepository",
            "metadata": metadata,
            "spec": spec,
        },
    )


async def reader(
    server: envtest.KubeTestServer, ns: str, kind: str, name: str, source: str
) -> None:
    if kind == "Kustomization":
        body = {
            "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
            "kind": kind,
            "metadata": {"name": name},
            "spec": {
                "sourceRef": {"kind": "GitRepository", "name": source},
                "path": "./",
                "interval": "10m",
                "prune": False,
            },
        }
        await kube(server, "POST", KUSTOMIZATIONS.format(ns=ns), body=body)
    else:
        body = {
            "apiVersion": "helm.toolkit.fluxcd.io/v2",
            "kind": kind,
            "metadata": {"name": name},
            "spec": {
                "interval": "10m",
                "chart": {
                    "spec": {
                        "chart": "./chart",
                        "sourceRef": {"kind": "GitRepository", "name": source},
                    }
                },
            },
        }
        await kube(server, "POST", HELMRELEASES.format(ns=ns), body=body)


async def annotated(server: envtest.KubeTestServer, collection: str, ns: str) -> dict[str, str]:
    listing = await kube(server, "GET", collection.format(ns=ns))
    return {
        item["metadata"]["name"]: (item["metadata"].get("annotations") or {}).get(REQUESTED_AT, "")
        for item in listing["items"]
    }


async def reconciled(server: envtest.KubeTestServer, ns: str, before: dict[str, str]) -> set[str]:
    """Names whose requestedAt moved since `before`, over GitRepositories, Kustomizations, HelmReleases."""
    now = {}
    for prefix, collection in (("", SOURCE), ("ks/", KUSTOMIZATIONS), ("hr/", HELMRELEASES)):
        now.update({prefix + k: v for k, v in (await annotated(server, collection, ns)).items()})
    return {name for name, stamp in now.items() if stamp and stamp != before.get(name, "")}


async def snapshot(server: envtest.KubeTestServer, ns: str) -> dict[str, str]:
    now: dict[str, str] = {}
    for prefix, collection in (("", SOURCE), ("ks/", KUSTOMIZATIONS), ("hr/", HELMRELEASES)):
        now.update({prefix + k: v for k, v in (await annotated(server, collection, ns)).items()})
    return now


async def post(
    app: App, endpoint: str, body: bytes, headers: dict[str, str]
) -> tuple[int, dict[str, Any]]:
    url = f"http://127.0.0.1:{app.ports['webhook']}/webhooks/{endpoint}"
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, data=body, headers=headers) as response,
    ):
        return response.status, await response.json(content_type=None)


def github(
    body: dict[str, Any], event: str = "push", delivery: str | None = None
) -> tuple[bytes, dict[str, str]]:
    raw = json.dumps(body).encode()
    digest = hmac.new(TOKEN.encode(), raw, hashlib.sha256).hexdigest()
    return raw, {
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery or digest[:16],
        "X-Hub-Signature-256": f"sha256={digest}",
    }


def github_push(
    repo: str, ref: str, changed: list[str] | None = None, *, deleted: bool = False
) -> dict[str, Any]:
    commits = [] if changed is None else [{"added": [], "modified": changed, "removed": []}]
    return {
        "ref": ref,
        "before": "1" * 40,
        "after": "0" * 40 if deleted else "2" * 40,
        "deleted": deleted,
        "repository": {
            "clone_url": f"https://github.com/{repo}.git",
            "ssh_url": f"git@github.com:{repo}.git",
            "html_url": f"https://github.com/{repo}",
            "full_name": repo,
            "default_branch": "main",
        },
        "commits": commits,
    }


@pytest.fixture
async def fleet(kube_server: envtest.KubeTestServer, namespace: str, app: App) -> str:
    """Objects pointing at one repository in several URL forms, with different refs and paths."""
    repo = f"org/{namespace}"
    await gitrepo(
        kube_server, namespace, "main-https", f"https://github.com/{repo}", {"branch": "main"}
    )
    await gitrepo(
        kube_server,
        namespace,
        "main-ssh-prod",
        f"ssh://git@github.com/{repo}.git",
        {"branch": "main"},
        paths="clusters/prod",
    )
    await gitrepo(
        kube_server,
        namespace,
        "dev-ssh-port",
        f"ssh://git@github.com:22/{repo}.git",
        {"branch": "dev"},
    )
    await gitrepo(kube_server, namespace, "default-branch", f"https://GitHub.com/{repo}/")
    await gitrepo(
        kube_server, namespace, "semver", f"https://github.com/{repo}", {"semver": ">=1.0.0 <2.0.0"}
    )
    await gitrepo(
        kube_server, namespace, "pinned-tag", f"https://github.com/{repo}", {"tag": "v1.2.0"}
    )
    await gitrepo(
        kube_server,
        namespace,
        "paused",
        f"https://github.com/{repo}",
        {"branch": "main"},
        suspend=True,
    )
    await gitrepo(
        kube_server,
        namespace,
        "other-repo",
        f"https://github.com/org/{namespace}-other",
        {"branch": "main"},
    )
    await reader(kube_server, namespace, "Kustomization", "apps", "main-https")
    await reader(kube_server, namespace, "HelmRelease", "chart", "main-ssh-prod")
    deadline = 200
    while len(app.discovery.git) < 8 or len(app.discovery.readers) < 2:
        deadline -= 1
        assert deadline, "watches never delivered the objects"
        await asyncio.sleep(0.05)
    return repo


@pytest.mark.parametrize(
    ("ref", "changed", "deleted", "expected"),
    [
        ("refs/heads/main", ["apps/web.yaml"], False, {"main-https", "default-branch", "ks/apps"}),
        (
            "refs/heads/main",
            ["clusters/prod/a.yaml"],
            False,
            {"main-https", "default-branch", "ks/apps", "main-ssh-prod", "hr/chart"},
        ),
        (
            "refs/heads/main",
            None,
            False,
            {"main-https", "default-branch", "ks/apps", "main-ssh-prod", "hr/chart"},
        ),
        ("refs/heads/dev", ["apps/x"], False, {"dev-ssh-port"}),
        ("refs/tags/v1.5.0", None, False, {"semver"}),
        ("refs/tags/v1.2.0", None, False, {"semver", "pinned-tag"}),
        ("refs/tags/v2.0.0", None, False, set()),
        ("refs/heads/main", None, True, set()),
    ],
    ids=[
        "main-apps",
        "main-prod-path",
        "main-unknown-files",
        "dev",
        "semver",
        "tag-and-semver",
        "semver-out-of-range",
        "branch-deleted",
    ],
)
async def test_push_reconciles_exactly_the_affected_objects(
    app: App,
    kube_server: envtest.KubeTestServer,
    namespace: str,
    fleet: str,
    ref: str,
    changed: list[str] | None,
    deleted: bool,
    expected: set[str],
) -> None:
    before = await snapshot(kube_server, namespace)
    status, answer = await post(
        app, "github", *github(github_push(fleet, ref, changed, deleted=deleted))
    )
    assert status == 200 and answer["targets"] == len(expected), answer
    await app.queue.settle()
    assert await reconciled(kube_server, namespace, before) == expected


async def test_ping_and_non_push_events_reconcile_nothing(
    app: App, kube_server: envtest.KubeTestServer, namespace: str, fleet: str
) -> None:
    before = await snapshot(kube_server, namespace)
    assert (await post(app, "github", *github({"zen": "hi", "hook_id": 1}, event="ping")))[1][
        "status"
    ] == "ignored"
    status, answer = await post(app, "github", *github({"action": "opened"}, event="pull_request"))
    assert (status, answer) == (
        200,
        {"status": "ignored", "reason": "pull_request event is not a push"},
    )
    await app.queue.settle()
    assert await reconciled(kube_server, namespace, before) == set()


async def test_form_encoded_push_routes_like_json(
    app: App, kube_server: envtest.KubeTestServer, namespace: str, fleet: str
) -> None:
    """GitHub's default `content_type: form`: the JSON is the `payload` field, the signature
    covers the whole form body."""
    before = await snapshot(kube_server, namespace)
    document = json.dumps(github_push(fleet, "refs/heads/dev", ["apps/x"]))
    form = urlencode({"payload": document}).encode()
    digest = hmac.new(TOKEN.encode(), form, hashlib.sha256).hexdigest()
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-GitHub-Event": "push",
        "X-GitHub-Delivery": "form-1",
        "X-Hub-Signature-256": f"sha256={digest}",
    }
    status, answer = await post(app, "github", form, headers)
    assert status == 200 and answer["status"] == "accepted" and answer["targets"] == 1, answer
    await app.queue.settle()
    assert await reconciled(kube_server, namespace, before) == {"dev-ssh-port"}


async def test_redelivery_of_the_same_delivery_id_is_not_applied_twice(
    app: App, kube_server: envtest.KubeTestServer, namespace: str, fleet: str
) -> None:
    body, headers = github(github_push(fleet, "refs/heads/dev", ["x"]), delivery="same-guid")
    assert (await post(app, "github", body, headers))[1]["status"] == "accepted"
    assert (await post(app, "github", body, headers))[1]["status"] == "duplicate"


async def test_gitlab_system_hook_and_generic_endpoint(
    app: App, kube_server: envtest.KubeTestServer, namespace: str
) -> None:
    await gitrepo(
        kube_server,
        namespace,
        "gl",
        f"https://gitlab.example.com/group/sub/{namespace}.git",
        {"branch": "main"},
    )
    await gitrepo(
        kube_server,
        namespace,
        "ci",
        f"ssh://git@git.example.com:2222/{namespace}",
        {"branch": "release"},
    )
    for _ in range(200):
        if len(
            app.discovery.git.records_for([f"https://gitlab.example.com/group/sub/{namespace}"])
        ) and len(app.discovery.git.records_for([f"https://git.example.com/{namespace}"])):
            break
        await asyncio.sleep(0.05)
    before = await snapshot(kube_server, namespace)
    system_hook = json.dumps(
        {
            "object_kind": "push",
            "event_name": "push",
            "ref": "refs/heads/main",
            "before": "1" * 40,
            "after": "2" * 40,
            "project": {
                "git_ssh_url": f"git@gitlab.example.com:group/sub/{namespace}.git",
                "web_url": f"https://gitlab.example.com/group/sub/{namespace}",
                "default_branch": "main",
            },
            "commits": [],
            "total_commits_count": 0,
        }
    ).encode()
    status, answer = await post(
        app, "gitlab", system_hook, {"X-Gitlab-Event": "System Hook", "X-Gitlab-Token": TOKEN}
    )
    assert (status, answer["targets"]) == (200, 1)
    assert (
        await post(
            app, "gitlab", system_hook, {"X-Gitlab-Event": "System Hook", "X-Gitlab-Token": "x"}
        )
    )[0] == 401
    generic = json.dumps(
        {"repository": f"https://git.example.com/{namespace}.git", "ref": "refs/heads/release"}
    ).encode()
    signature = "sha256=" + hmac.new(TOKEN.encode(), generic, hashlib.sha256).hexdigest()
    status, answer = await post(app, "generic", generic, {"X-Signature": signature})
    assert (status, answer["targets"]) == (200, 1)
    await app.queue.settle()
    assert await reconciled(kube_server, namespace, before) == {"gl", "ci"}


async def test_unconfigured_endpoint_is_404_and_missing_secret_is_503(
    kube_server: envtest.KubeTestServer, namespace: str
) -> None:
    ref = {"secret_ref": {"namespace": namespace, "name": "absent"}}
    async with running_app(
        kubeconfig=kube_server.kubeconfig_path, discovery={"endpoints": {"github": ref}}
    ) as app:
        status, answer = await post(app, "gitlab", b"{}", {})
        assert status == 404 and "gitlab" in answer["error"]
        status, answer = await post(app, "github", b"{}", {})
        assert status == 503 and "absent" in answer["error"]


@pytest.mark.parametrize(
    "endpoint", ["nexus", "cdevents", "generic-hmac", "generic-oidc", "nonsense"]
)
def test_endpoints_that_cannot_route_are_refused_at_start_up(endpoint: str) -> None:
    settings = load(
        config_file=None,
        overrides={
            "inventory": Path(__file__).resolve().parents[2] / "config" / "examples",
            "discovery": {"endpoints": {endpoint: {"secret_ref": {"namespace": "a", "name": "b"}}}},
        },
    )
    with pytest.raises(ConfigError, match="names what was pushed"):
        App(settings, client=None)


async def test_signed_endpoints_take_no_path_token(app: App, namespace: str) -> None:
    body, headers = github({"zen": "hi"}, event="ping")
    status, answer = await post(app, "github/some-token", body, headers)
    assert status == 404 and "no token in its path" in answer["error"]
