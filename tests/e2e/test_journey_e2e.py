"""The whole journey in the running service: a GitLab push to /webhooks/gitlab reconciles the
GitRepository and its Kustomization, and the emulated GitLab receives pending -> running ->
success as kustomize-controller's status moves in the real API server."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator

import aiohttp
import pytest

from tests import envtest
from tests.support.forges import EmulatedGitLab
from tests.support.running import eventually, kube, running_app

SHA = "d4" * 20
HOOK_TOKEN = "gitlab-hook-token"
API_TOKEN = "glpat-journey"
KUSTOMIZE = "/apis/kustomize.toolkit.fluxcd.io/v1/namespaces/{ns}/kustomizations"
SOURCE = "/apis/source.toolkit.fluxcd.io/v1/namespaces/{ns}/gitrepositories"


@pytest.fixture
async def gitlab() -> AsyncIterator[EmulatedGitLab]:
    forge = EmulatedGitLab(token=API_TOKEN, projects={"group/fleet"})
    await forge.start()
    try:
        yield forge
    finally:
        await forge.close()


def condition(kind: str, status: str, reason: str, message: str) -> dict[str, str]:
    return {
        "type": kind,
        "status": status,
        "reason": reason,
        "message": message,
        "lastTransitionTime": "2026-11-26T10:00:00Z",
    }


async def test_push_to_applied_reports_each_step_on_the_commit(
    kube_server: envtest.KubeTestServer, namespace: str, gitlab: EmulatedGitLab
) -> None:
    secret = {
        "hook": base64.b64encode(HOOK_TOKEN.encode()).decode(),
        "api": base64.b64encode(API_TOKEN.encode()).decode(),
    }
    await kube(
        kube_server,
        "POST",
        f"/api/v1/namespaces/{namespace}/secrets",
        body={"metadata": {"name": "tokens"}, "data": secret},
    )
    await kube(
        kube_server,
        "POST",
        SOURCE.format(ns=namespace),
        body={
            "apiVersion": "source.toolkit.fluxcd.io/v1",
            "kind": "GitRepository",
            "metadata": {"name": "fleet"},
            "spec": {
                "url": "https://gitlab.test/group/fleet.git",
                "ref": {"branch": "main"},
                "interval": "10m",
            },
        },
    )
    await kube(
        kube_server,
        "POST",
        KUSTOMIZE.format(ns=namespace),
        body={
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
    status = {
        "cluster": "e2e",
        "forges": [
            {
                "kind": "gitlab",
                "host": "gitlab.test",
                "api_base_url": gitlab.base_url,
                "token_secret_ref": {"namespace": namespace, "name": "tokens", "key": "api"},
            }
        ],
    }
    discovery = {
        "endpoints": {
            "gitlab": {"secret_ref": {"namespace": namespace, "name": "tokens", "key": "hook"}}
        },
        "downstream": True,
        "namespaces": [namespace],
    }
    async with running_app(
        kubeconfig=kube_server.kubeconfig_path, discovery=discovery, status=status
    ) as app:
        await eventually(lambda: _count(app), check=lambda n: n == (1, 1))
        push = json.dumps(
            {
                "object_kind": "push",
                "ref": "refs/heads/main",
                "before": "1" * 40,
                "after": SHA,
                "checkout_sha": SHA,
                "project": {
                    "git_http_url": "https://gitlab.test/group/fleet.git",
                    "path_with_namespace": "group/fleet",
                    "default_branch": "main",
                },
                "commits": [],
                "total_commits_count": 0,
            }
        ).encode()
        url = f"http://127.0.0.1:{app.ports['webhook']}/webhooks/gitlab"
        async with (
            aiohttp.ClientSession() as session,
            session.post(
                url,
                data=push,
                headers={"X-Gitlab-Event": "Push Hook", "X-Gitlab-Token": HOOK_TOKEN},
            ) as response,
        ):
            assert response.status == 200
            assert (await response.json())["targets"] == 2
        name = f"flux/e2e/Kustomization/{namespace}/apps"
        await eventually(_states(gitlab, name), check=lambda s: s == ["pending"])
        ks = KUSTOMIZE.format(ns=namespace) + "/apps/status"
        revision = f"main@sha1:{SHA}"
        await kube(
            kube_server,
            "PATCH",
            ks,
            content_type="application/merge-patch+json",
            body={
                "status": {
                    "observedGeneration": 1,
                    "conditions": [
                        condition(
                            "Reconciling",
                            "True",
                            "Progressing",
                            f"Fetching manifests for revision {revision}",
                        ),
                        condition("Ready", "Unknown", "Progressing", "Reconciliation in progress"),
                    ],
                }
            },
        )
        await eventually(_states(gitlab, name), check=lambda s: s == ["pending", "running"])
        await kube(
            kube_server,
            "PATCH",
            ks,
            content_type="application/merge-patch+json",
            body={
                "status": {
                    "observedGeneration": 1,
                    "lastAppliedRevision": revision,
                    "lastAttemptedRevision": revision,
                    "conditions": [
                        condition(
                            "Ready",
                            "True",
                            "ReconciliationSucceeded",
                            f"Applied revision: {revision}",
                        )
                    ],
                }
            },
        )
        await eventually(
            _states(gitlab, name), check=lambda s: s == ["pending", "running", "success"]
        )
        # Posts to the commit; a read of its statuses only where an update was decided before
        # this replica led (held, then checked): never anything else.
        posts = [call for call in gitlab.calls if call.method == "POST"]
        assert all(call.raw_path.endswith(f"/statuses/{SHA}") for call in posts)
        reads = [call for call in gitlab.calls if call.method == "GET"]
        assert all(f"/repository/commits/{SHA}/statuses" in call.raw_path for call in reads)
        assert all(call.headers.get("PRIVATE-TOKEN") == API_TOKEN for call in gitlab.calls)
        # The delivery inspector shows each status posted for the pushed commit on the delivery.
        (delivery,) = app.journal.entries()
        posted = await eventually(
            lambda: asyncio.sleep(0, [(s.name, s.state, s.outcome) for s in delivery.statuses]),
            check=lambda found: len(found) == 3,
        )
        assert posted == [(name, state, "created") for state in ("pending", "running", "success")]
        assert delivery.commit == SHA


async def _count(app: object) -> tuple[int, int]:
    return len(app.discovery.git), len(app.discovery.readers)  # type: ignore[attr-defined]


def _states(forge: EmulatedGitLab, name: str):  # type: ignore[no-untyped-def]
    async def probe() -> list[str]:
        return forge.states(name=name)

    return probe
