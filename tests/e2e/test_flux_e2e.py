"""Push → applied → commit status on the real path: Flux's own controllers, real git, our app.

The bed (tests/support/flux.py): source-controller and kustomize-controller v1.9.6 run against
the test API server; a Git repository of ConfigMaps is served over smart HTTP; each test pushes
with a real `git push`, announces the push the way GitHub (signed, to a Receiver's
`/hook/<digest>`) or GitLab (to `/webhooks/gitlab`) would, or not at all (the poller), and waits
for what Flux really writes: the GitRepository's artifact, the Kustomization Ready at that
revision, the ConfigMap in the API server, and the statuses on an emulated forge that checks
every call. Every wait is bounded.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from receiver import samples
from receiver.app import App
from receiver.routing.hooks import webhook_path
from tests import envtest
from tests.support import flux
from tests.support.forges import EmulatedForge, EmulatedGitHub, EmulatedGitLab
from tests.support.running import eventually, kube, running_app

pytestmark = pytest.mark.integration

PROJECT = "acme/fleet"
WEBHOOK_TOKEN = "flux-e2e-webhook-token"
FORGE_TOKEN = "flux-e2e-forge-token"
CLUSTER = "bed"
SOURCE = "fleet"
KS = "apps"
CONFIGMAP = "app-config"
APPLY_TIMEOUT_S = 60
GITREPOS = "/apis/source.toolkit.fluxcd.io/v1/namespaces/{ns}/gitrepositories"
KUSTOMIZATIONS = "/apis/kustomize.toolkit.fluxcd.io/v1/namespaces/{ns}/kustomizations"
RECEIVERS = "/apis/notification.toolkit.fluxcd.io/v1/namespaces/{ns}/receivers"


@pytest.fixture
def git_server(tmp_path: Path) -> Iterator[flux.ThreadedGitServer]:
    (tmp_path / "served").mkdir()
    server = flux.ThreadedGitServer(tmp_path / "served")
    try:
        yield server
    finally:
        server.close()


@dataclass
class Bed:
    """One namespace's Flux objects over one repository, and the forge that gets statuses."""

    server: envtest.KubeTestServer
    namespace: str
    repo: flux.FleetRepo
    forge: EmulatedForge
    kind: str

    @property
    def status_name(self) -> str:
        return f"flux/{CLUSTER}/Kustomization/{self.namespace}/{KS}"

    async def commit_and_push(self, version: str, *, broken: bool = False) -> tuple[str, str]:
        data = {"version": version}
        files = {"app.yaml": flux.configmap(CONFIGMAP, data)}
        if broken:
            # Valid YAML, refused by the API server's dry run: ConfigMap data must be strings.
            files["broken.yaml"] = (
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: broken\ndata:\n  n: [1]\n"
            )
        self.repo.commit(files, message=f"version {version}")
        return await self.repo.apush()

    async def configmap_version(self) -> str | None:
        status, body = await _request(
            self.server, "GET", f"/api/v1/namespaces/{self.namespace}/configmaps/{CONFIGMAP}"
        )
        return body.get("data", {}).get("version") if status == 200 else None

    async def kustomization(self) -> dict[str, Any]:
        body: dict[str, Any] = await kube(
            self.server, "GET", KUSTOMIZATIONS.format(ns=self.namespace) + f"/{KS}"
        )
        return body

    async def wait_applied(self, sha: str, version: str) -> None:
        """The whole chain: artifact at `sha`, Kustomization Ready at `sha`, ConfigMap changed."""

        async def chain() -> tuple[str | None, str | None, str | None]:
            source = await kube(
                self.server, "GET", GITREPOS.format(ns=self.namespace) + f"/{SOURCE}"
            )
            artifact = (source.get("status") or {}).get("artifact") or {}
            return (
                artifact.get("revision"),
                flux.applied_revision(await self.kustomization()),
                await self.configmap_version(),
            )

        want = f"main@sha1:{sha}"
        await eventually(chain, check=lambda got: got == (want, want, version), timeout_s=60)

    def states(self, sha: str) -> list[str]:
        """The states posted for `sha`, repeats folded: GitHub has no "running", so Flux
        reconciling is a second `pending` with a new description there."""
        found: list[str] = []
        for posted in self.forge.posted:
            mine = posted.sha == sha and posted.name == self.status_name
            if mine and (not found or found[-1] != posted.state):
                found.append(posted.state)
        return found

    async def wait_states(self, sha: str, expected: list[str]) -> None:
        async def posted() -> list[str]:
            return self.states(sha)

        await eventually(posted, check=lambda got: got == expected, timeout_s=APPLY_TIMEOUT_S)

    def assert_descriptions_name_their_commit(self) -> None:
        """Every success says "Applied revision: …@sha1:<its own sha>"."""
        for posted in self.forge.posted:
            if posted.state == "success":
                assert posted.sha in posted.description, posted


async def _request(
    server: envtest.KubeTestServer, method: str, path: str, **kwargs: Any
) -> tuple[int, Any]:
    return await asyncio.to_thread(server.request, method, path, **kwargs)


@contextlib.asynccontextmanager
async def bed(
    *,
    kind: str,
    server: envtest.KubeTestServer,
    namespace: str,
    git_server: flux.ThreadedGitServer,
) -> AsyncIterator[Bed]:
    """Repository with a first commit applied by Flux, forge emulator, Secrets."""
    forge: EmulatedForge = (
        EmulatedGitLab(token=FORGE_TOKEN, projects={PROJECT})
        if kind == "gitlab"
        else EmulatedGitHub(token=FORGE_TOKEN, projects={PROJECT})
    )
    await forge.start()
    try:
        repo = flux.FleetRepo(server=git_server, name=PROJECT)
        setup = Bed(server=server, namespace=namespace, repo=repo, forge=forge, kind=kind)
        _, first = await setup.commit_and_push("1")
        await kube(
            server,
            "POST",
            f"/api/v1/namespaces/{namespace}/secrets",
            body={
                "metadata": {"name": "tokens"},
                "data": {
                    "token": base64.b64encode(WEBHOOK_TOKEN.encode()).decode(),
                    "forge": base64.b64encode(FORGE_TOKEN.encode()).decode(),
                },
            },
        )
        await kube(
            server,
            "POST",
            GITREPOS.format(ns=namespace),
            body=flux.git_repository(name=SOURCE, url=repo.url),
        )
        await kube(
            server,
            "POST",
            KUSTOMIZATIONS.format(ns=namespace),
            body=flux.kustomization(name=KS, source=SOURCE, target_namespace=namespace),
        )
        await setup.wait_applied(first, "1")
        yield setup
    finally:
        await forge.close()


def app_settings(setup: Bed, **extra: Any) -> dict[str, Any]:
    secret = {"namespace": setup.namespace, "name": "tokens"}
    return {
        "discovery": {
            "endpoints": {setup.kind: {"secret_ref": secret}},
            "namespaces": [setup.namespace],
        },
        "status": {
            "cluster": CLUSTER,
            "forges": [
                {
                    "kind": setup.kind,
                    "host": "127.0.0.1",
                    "api_base_url": setup.forge.base_url,
                    "token_secret_ref": {**secret, "key": "forge"},
                }
            ],
        },
        **extra,
    }


async def announce(app: App, setup: Bed, pushed: tuple[str, str], *, path: str) -> None:
    """Send the push's webhook, signed as the forge signs it; it must be accepted."""
    before, after = pushed
    body = samples.encode(
        flux.push_payload(
            kind=setup.kind, url=setup.repo.url, project=PROJECT, before=before, after=after
        )
    )
    headers = samples.signed_delivery(
        kind=setup.kind,
        secret=WEBHOOK_TOKEN,
        body=body,
        event="Push Hook" if setup.kind == "gitlab" else "push",
        delivery_id=str(uuid.uuid4()),
    )
    url = f"http://127.0.0.1:{app.ports['webhook']}{path}"
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, data=body, headers=headers) as answer,
    ):
        text = await answer.text()
    assert answer.status == 200, text
    assert json.loads(text)["status"] == "accepted", text


async def github_receiver(setup: Bed) -> str:
    """A Flux Receiver for the GitRepository; returns its webhook path."""
    await kube(
        setup.server,
        "POST",
        RECEIVERS.format(ns=setup.namespace),
        body={
            "apiVersion": "notification.toolkit.fluxcd.io/v1",
            "kind": "Receiver",
            "metadata": {"name": "github"},
            "spec": {
                "type": "github",
                "events": ["ping", "push"],
                "secretRef": {"name": "tokens"},
                "resources": [
                    {"apiVersion": flux.SOURCE_API, "kind": "GitRepository", "name": SOURCE}
                ],
            },
        },
    )
    return webhook_path(token=WEBHOOK_TOKEN.encode(), name="github", namespace=setup.namespace)


async def wait_receiver_ready(setup: Bed, name: str) -> dict[str, Any]:
    async def fetch() -> dict[str, Any]:
        body: dict[str, Any] = await kube(
            setup.server, "GET", RECEIVERS.format(ns=setup.namespace) + f"/{name}"
        )
        return body

    def ready(obj: dict[str, Any]) -> bool:
        conditions = (obj.get("status") or {}).get("conditions") or []
        return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)

    return await eventually(fetch, check=ready, timeout_s=30)


# -- the journey ------------------------------------------------------------------------------


async def test_github_push_to_a_receiver_is_applied_and_reported(
    kube_server: envtest.KubeTestServer,
    namespace: str,
    flux_controllers: flux.FluxControllers,
    git_server: flux.ThreadedGitServer,
) -> None:
    async with bed(
        kind="github", server=kube_server, namespace=namespace, git_server=git_server
    ) as setup:
        path = await github_receiver(setup)
        async with running_app(
            kubeconfig=kube_server.kubeconfig_path, **app_settings(setup)
        ) as app:
            await wait_receiver_ready(setup, "github")
            pushed = await setup.commit_and_push("2")
            await announce(app, setup, pushed, path=path)
            await setup.wait_applied(pushed[1], "2")
            await setup.wait_states(pushed[1], ["pending", "success"])
        setup.assert_descriptions_name_their_commit()


async def test_gitlab_push_through_discovery_is_applied_and_reported(
    kube_server: envtest.KubeTestServer,
    namespace: str,
    flux_controllers: flux.FluxControllers,
    git_server: flux.ThreadedGitServer,
) -> None:
    async with bed(
        kind="gitlab", server=kube_server, namespace=namespace, git_server=git_server
    ) as setup:
        async with running_app(
            kubeconfig=kube_server.kubeconfig_path, **app_settings(setup)
        ) as app:
            pushed = await setup.commit_and_push("2")
            await announce(app, setup, pushed, path="/webhooks/gitlab")
            await setup.wait_applied(pushed[1], "2")
            await setup.wait_states(pushed[1], ["pending", "running", "success"])
        setup.assert_descriptions_name_their_commit()


@pytest.mark.parametrize("kind", ["gitlab", "github"])
async def test_a_commit_that_breaks_the_kustomization_is_reported_failed(
    kind: str,
    kube_server: envtest.KubeTestServer,
    namespace: str,
    flux_controllers: flux.FluxControllers,
    git_server: flux.ThreadedGitServer,
) -> None:
    """kustomize-controller v1.9.6 writes Reconciling=True/ProgressingWithRetry beside
    Ready=False: that is a failure, with Flux's own message."""
    async with bed(
        kind=kind, server=kube_server, namespace=namespace, git_server=git_server
    ) as setup:
        async with running_app(
            kubeconfig=kube_server.kubeconfig_path, **app_settings(setup)
        ) as app:
            pushed = await setup.commit_and_push("2", broken=True)
            await announce(app, setup, pushed, path=f"/webhooks/{kind}")
            final = "failed" if kind == "gitlab" else "failure"
            await eventually(
                lambda: _settled(setup, pushed[1]),
                check=lambda got: bool(got) and got[-1] == final,
                timeout_s=APPLY_TIMEOUT_S,
            )
            obj = await setup.kustomization()
        ready = next(c for c in obj["status"]["conditions"] if c["type"] == "Ready")
        reconciling = [c for c in obj["status"]["conditions"] if c["type"] == "Reconciling"]
        assert ready["status"] == "False"
        assert reconciling and reconciling[0]["reason"] == "ProgressingWithRetry"
        failed = [p for p in setup.forge.posted if p.sha == pushed[1] and p.state == final]
        assert "broken" in failed[0].description
        # Flux's own message (cut to the forge's limit, with an ellipsis, on GitHub).
        assert ready["message"].startswith(failed[0].description.removesuffix("…"))
        assert await setup.configmap_version() == "1"


async def _settled(setup: Bed, sha: str) -> list[str]:
    return setup.states(sha)


@pytest.mark.parametrize("kind", ["gitlab", "github"])
async def test_two_quick_commits_the_first_is_superseded(
    kind: str,
    kube_server: envtest.KubeTestServer,
    namespace: str,
    flux_controllers: flux.FluxControllers,
    git_server: flux.ThreadedGitServer,
) -> None:
    async with bed(
        kind=kind, server=kube_server, namespace=namespace, git_server=git_server
    ) as setup:
        async with running_app(
            kubeconfig=kube_server.kubeconfig_path, **app_settings(setup)
        ) as app:
            first = await setup.commit_and_push("2")
            second = await setup.commit_and_push("3")
            await announce(app, setup, first, path=f"/webhooks/{kind}")
            await announce(app, setup, second, path=f"/webhooks/{kind}")
            await setup.wait_applied(second[1], "3")
            superseded = "canceled" if kind == "gitlab" else "error"
            await eventually(
                lambda: _settled(setup, first[1]),
                check=lambda got: bool(got) and got[-1] == superseded,
                timeout_s=APPLY_TIMEOUT_S,
            )
            await eventually(
                lambda: _settled(setup, second[1]),
                check=lambda got: bool(got) and got[-1] == "success",
                timeout_s=APPLY_TIMEOUT_S,
            )
        last_first = [p for p in setup.forge.posted if p.sha == first[1]][-1]
        assert last_first.description.startswith("Superseded: Flux applied a newer revision")
        setup.assert_descriptions_name_their_commit()


async def test_webhooks_out_of_order_are_ordered_by_before(
    kube_server: envtest.KubeTestServer,
    namespace: str,
    flux_controllers: flux.FluxControllers,
    git_server: flux.ThreadedGitServer,
) -> None:
    """B's webhook arrives before A's (B.before == A): once B is applied, A is canceled,
    not left pending until some later push."""
    async with (
        bed(kind="gitlab", server=kube_server, namespace=namespace, git_server=git_server) as setup,
        running_app(kubeconfig=kube_server.kubeconfig_path, **app_settings(setup)) as app,
    ):
        first = await setup.commit_and_push("2")
        second = await setup.commit_and_push("3")
        assert second[0] == first[1]
        await announce(app, setup, second, path="/webhooks/gitlab")
        await setup.wait_applied(second[1], "3")
        await setup.wait_states(second[1], ["pending", "running", "success"])
        await announce(app, setup, first, path="/webhooks/gitlab")
        await setup.wait_states(first[1], ["pending", "canceled"])


async def test_a_push_without_webhook_is_applied_by_the_poller_with_statuses(
    kube_server: envtest.KubeTestServer,
    namespace: str,
    flux_controllers: flux.FluxControllers,
    git_server: flux.ThreadedGitServer,
) -> None:
    """The webhook is lost: the poller sees the move, asks a reconcile, counts it, and the
    commit still gets its statuses (pending when the poller sees it, then the outcome).
    A second lost push right after is caught by the very next tick: the poller's own
    earlier request does not count as "recently requested"."""
    async with bed(
        kind="gitlab", server=kube_server, namespace=namespace, git_server=git_server
    ) as setup:
        settings = app_settings(
            setup, poll={"enabled": True, "interval_s": 2.0, "allow_insecure_http": True}
        )
        async with running_app(kubeconfig=kube_server.kubeconfig_path, **settings) as app:
            registry = app.metrics.registry
            first = await setup.commit_and_push("2")
            await setup.wait_applied(first[1], "2")
            await setup.wait_states(first[1], ["pending", "running", "success"])
            assert registry.get_sample_value("gitops_receiver_poll_reconciles_total") == 1

            ticks_before = registry.get_sample_value(
                "gitops_receiver_polls_total", {"outcome": "ok"}
            )
            second = await setup.commit_and_push("3")
            await setup.wait_applied(second[1], "3")
            ticks_after = registry.get_sample_value(
                "gitops_receiver_polls_total", {"outcome": "ok"}
            )
            assert registry.get_sample_value("gitops_receiver_poll_reconciles_total") == 2
            assert ticks_before is not None and ticks_after is not None
            # The first tick after the push asked for it (a skipped tick would make it two),
            # give or take the tick that was running while the push happened.
            assert ticks_after - ticks_before <= 2
            await setup.wait_states(second[1], ["pending", "running", "success"])


async def test_flux_create_receiver_becomes_ready_with_the_path_the_cli_shows(
    kube_server: envtest.KubeTestServer,
    namespace: str,
    flux_build: flux.FluxBuild,
    flux_controllers: flux.FluxControllers,
    git_server: flux.ThreadedGitServer,
) -> None:
    async with (
        bed(kind="github", server=kube_server, namespace=namespace, git_server=git_server) as setup,
        running_app(kubeconfig=kube_server.kubeconfig_path, **app_settings(setup)) as app,
    ):
        created = await asyncio.to_thread(
            flux.run_flux_cli,
            flux_build,
            "create",
            "receiver",
            "from-cli",
            "--type=github",
            "--event=ping",
            "--event=push",
            "--secret-ref=tokens",
            f"--resource=GitRepository/{SOURCE}",
            f"--namespace={namespace}",
            kubeconfig=kube_server.kubeconfig_path,
        )
        assert created.returncode == 0, created.stderr
        expected = webhook_path(token=WEBHOOK_TOKEN.encode(), name="from-cli", namespace=namespace)
        assert expected in created.stderr + created.stdout, created.stderr
        listed = await asyncio.to_thread(
            flux.run_flux_cli,
            flux_build,
            "get",
            "receivers",
            f"--namespace={namespace}",
            kubeconfig=kube_server.kubeconfig_path,
        )
        assert listed.returncode == 0, listed.stderr
        row = next(line for line in listed.stdout.splitlines() if line.startswith("from-cli"))
        assert "True" in row.split(), listed.stdout
        # And the path the CLI showed is the one that works.
        pushed = await setup.commit_and_push("2")
        await announce(app, setup, pushed, path=expected)
        await setup.wait_applied(pushed[1], "2")
