"""StatusService hooks against an emulated GitLab on 127.0.0.1, fed raw Flux objects.

What the e2e suite does not cover: which HelmReleases get statuses, deletions reported with
metadata only, the GitRepository hook's effect on supersession, per-namespace tokens.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from receiver.config import StatusSettings
from receiver.events import GitPush, ObjectRef
from receiver.status.service import StatusService
from tests.support.forges import EmulatedGitLab

SHA_A = "a1" * 20
SHA_B = "b2" * 20
TOKEN = "glpat-service-token"
REPO = "https://gitlab.test/group/fleet.git"
KS = ObjectRef("kustomize.toolkit.fluxcd.io/v1", "Kustomization", "apps", "web")
HR_GIT = ObjectRef("helm.toolkit.fluxcd.io/v2", "HelmRelease", "apps", "from-git")
HR_REPO = ObjectRef("helm.toolkit.fluxcd.io/v2", "HelmRelease", "apps", "from-repo")
IDLE_TIMEOUT_S = 10


def name_of(ref: ObjectRef) -> str:
    return f"flux/test/{ref.kind}/{ref.namespace}/{ref.name}"


@pytest.fixture
async def gitlab() -> AsyncIterator[EmulatedGitLab]:
    forge = EmulatedGitLab(token=TOKEN, projects={"group/fleet"})
    await forge.start()
    yield forge
    await forge.close()


class Harness:
    def __init__(self, gitlab: EmulatedGitLab, *, forge: dict[str, Any] | None = None) -> None:
        self.secrets: dict[tuple[str, str], dict[str, bytes]] = {
            ("flux-system", "gitlab"): {"token": TOKEN.encode()}
        }
        settings = StatusSettings.model_validate(
            {
                "cluster": "test",
                "forges": [
                    {
                        "kind": "gitlab",
                        "host": "gitlab.test",
                        "api_base_url": gitlab.base_url,
                        "token_secret_ref": {"namespace": "flux-system", "name": "gitlab"},
                        **(forge or {}),
                    }
                ],
            }
        )
        self.service = StatusService(
            settings=settings,
            secret_lookup=lambda ns, name: self.secrets.get((ns, name)),
            registry=CollectorRegistry(),
        )

    def push(self, sha: str, *, downstream: list[ObjectRef]) -> None:
        self.service.on_push(
            GitPush(
                source="gitlab",
                event="Push Hook",
                repo_urls=(REPO,),
                ref="refs/heads/main",
                after=sha,
            ),
            downstream=downstream,
        )

    async def idle(self) -> None:
        await asyncio.wait_for(self.service.reporter.wait_idle(), IDLE_TIMEOUT_S)


@pytest.fixture
async def harness(gitlab: EmulatedGitLab) -> AsyncIterator[Harness]:
    running = Harness(gitlab)
    await running.service.start()
    yield running
    await running.service.stop(drain_timeout_s=5)


def helmrelease(ref: ObjectRef, *, chart_spec: dict[str, Any], status: dict[str, Any]) -> Any:
    return {
        "apiVersion": ref.api_version,
        "kind": ref.kind,
        "metadata": {"namespace": ref.namespace, "name": ref.name, "generation": 1},
        "spec": {"chart": {"spec": {"chart": "./charts/web", **chart_spec}}},
        "status": status,
    }


def kustomization(*, applied: str | None) -> dict[str, Any]:
    status: dict[str, Any] = {"observedGeneration": 1, "conditions": []}
    if applied is not None:
        status["conditions"] = [{"type": "Ready", "status": "True", "message": "Applied"}]
        status["lastAppliedRevision"] = f"main@sha1:{applied}"
    return {
        "apiVersion": KS.api_version,
        "kind": KS.kind,
        "metadata": {"namespace": KS.namespace, "name": KS.name, "generation": 1},
        "status": status,
    }


GIT_SOURCE = {"sourceRef": {"kind": "GitRepository", "name": "fleet"}}
HELM_SOURCE = {"sourceRef": {"kind": "HelmRepository", "name": "charts"}, "version": "1.x"}


async def test_only_helmreleases_whose_chart_names_the_commit_get_statuses(
    harness: Harness, gitlab: EmulatedGitLab
) -> None:
    waiting: dict[str, Any] = {"conditions": []}
    harness.service.on_flux_object(
        "ADDED",
        helmrelease(
            HR_GIT, chart_spec={**GIT_SOURCE, "reconcileStrategy": "Revision"}, status=waiting
        ),
    )
    harness.service.on_flux_object(
        "ADDED", helmrelease(HR_REPO, chart_spec=HELM_SOURCE, status=waiting)
    )
    harness.push(SHA_A, downstream=[KS, HR_GIT, HR_REPO])
    await harness.idle()
    assert [(p.name, p.state) for p in gitlab.posted] == [
        (name_of(KS), "pending"),
        (name_of(HR_GIT), "pending"),
    ]

    # helm-controller installed the chart built from SHA_A: version `<chart>+<sha[:12]>`.
    installed = {
        "observedGeneration": 1,
        "conditions": [{"type": "Ready", "status": "True", "message": "Helm install succeeded"}],
        "lastAttemptedRevision": f"0.1.0+{SHA_A[:12]}",
        "history": [{"version": 1, "status": "deployed", "chartVersion": f"0.1.0+{SHA_A[:12]}"}],
    }
    harness.service.on_flux_object(
        "MODIFIED",
        helmrelease(
            HR_GIT, chart_spec={**GIT_SOURCE, "reconcileStrategy": "Revision"}, status=installed
        ),
    )
    await harness.idle()
    assert [(p.name, p.sha, p.state, p.description) for p in gitlab.posted[2:]] == [
        (name_of(HR_GIT), SHA_A, "success", "Helm install succeeded")
    ]


async def test_a_release_switched_to_chartversion_and_a_deleted_one_get_no_more_statuses(
    harness: Harness, gitlab: EmulatedGitLab
) -> None:
    revision = {**GIT_SOURCE, "reconcileStrategy": "Revision"}
    harness.service.on_flux_object("ADDED", helmrelease(HR_GIT, chart_spec=revision, status={}))
    harness.service.on_flux_object("ADDED", helmrelease(HR_REPO, chart_spec=revision, status={}))
    harness.service.on_flux_object(
        "MODIFIED", helmrelease(HR_GIT, chart_spec=GIT_SOURCE, status={})
    )
    # A re-list reports a vanished object with its metadata only: the watch names the kind.
    harness.service.on_flux_object(
        "DELETED",
        {"metadata": {"namespace": HR_REPO.namespace, "name": HR_REPO.name}},
        kind="HelmRelease",
    )
    harness.push(SHA_A, downstream=[HR_GIT, HR_REPO])
    await harness.idle()
    assert gitlab.calls == []


async def test_a_deleted_kustomization_is_forgotten(
    harness: Harness, gitlab: EmulatedGitLab
) -> None:
    harness.push(SHA_A, downstream=[KS])
    await harness.idle()
    harness.service.on_flux_object(
        "DELETED", {"metadata": {"namespace": KS.namespace, "name": KS.name}}, kind="Kustomization"
    )
    harness.service.on_flux_object("ADDED", kustomization(applied=SHA_A))
    await harness.idle()
    assert gitlab.states(name=name_of(KS)) == ["pending"]


@pytest.mark.parametrize(
    ("source_first", "expected"),
    [(True, ["pending"]), (False, ["pending", "canceled"])],
    ids=["source-served-b-before-the-push-of-a", "b-unannounced"],
)
async def test_the_source_hook_orders_supersession(
    harness: Harness, gitlab: EmulatedGitLab, source_first: bool, expected: list[str]
) -> None:
    """The source served B before A was pushed: applying B does not supersede the newer A."""
    if source_first:
        gitrepo = {
            "apiVersion": "source.toolkit.fluxcd.io/v1",
            "kind": "GitRepository",
            "metadata": {"namespace": "apps", "name": "fleet"},
            "status": {"artifact": {"revision": f"main@sha1:{SHA_B}"}},
        }
        harness.service.on_source("MODIFIED", gitrepo, downstream=[KS])
    harness.push(SHA_A, downstream=[KS])
    harness.service.on_flux_object("MODIFIED", kustomization(applied=SHA_B))
    await harness.idle()
    assert [p.state for p in gitlab.posted if p.sha == SHA_A] == expected


async def test_a_namespace_token_is_used_for_its_namespace_only(gitlab: EmulatedGitLab) -> None:
    harness = Harness(gitlab, forge={"namespace_token_secret_refs": {"team-a": {"name": "own"}}})
    harness.secrets[("flux-system", "gitlab")] = {"token": b"glpat-the-platform-token"}
    harness.secrets[("team-a", "own")] = {"token": f"{TOKEN}\n".encode()}
    team_a = ObjectRef(KS.api_version, KS.kind, "team-a", "web")
    await harness.service.start()
    harness.push(SHA_A, downstream=[team_a, KS])
    await harness.idle()
    await harness.service.stop(drain_timeout_s=5)

    assert [(call.headers["PRIVATE-TOKEN"], call.answered) for call in gitlab.calls] == [
        (TOKEN, 201),
        ("glpat-the-platform-token", 401),
    ]
    assert [p.name for p in gitlab.posted] == [name_of(team_a)]
