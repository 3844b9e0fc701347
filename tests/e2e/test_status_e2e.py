"""Commit statuses end to end: real API server, real watches, emulated GitHub and GitLab.

Each test creates a token Secret, a GitRepository and a Kustomization in a fresh namespace,
runs real watches (Secrets feed the token lookup, Kustomizations feed
`StatusService.on_flux_object`), calls `on_push` the way the pipeline will, then writes the
Kustomization's status through the status subresource the way kustomize-controller does.
The emulators check path, auth header and body of every call; the tests assert the exact calls.
Waits are bounded and keyed on watch events (resourceVersions), never on time; `sleep` is
injected so a rate-limit wait is recorded, not waited.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from structlog.testing import capture_logs

from receiver.config import StatusSettings, WatchSettings
from receiver.events import GitPush, ObjectRef
from receiver.kube import watching
from receiver.kube.client import KubeClient
from receiver.objects import raw, resources
from receiver.routing.receivers import decode_secret_data
from receiver.status.service import StatusService
from tests import envtest
from tests.support.forges import EmulatedForge, EmulatedGitHub, EmulatedGitLab
from tests.support.running import eventually, kube

SHA_OLD = "0123456789abcdef" * 2 + "01234567"
SHA_A = "a1" * 20
SHA_B = "b2" * 20
SHA_C = "c3" * 20
GITHUB_TOKEN = "ghp-e2e-status-token"
GITLAB_TOKEN = "glpat-e2e-status-token"
TOKEN_SECRET = "forge-tokens"
KS_NAME = "apps"
CLUSTER = "e2e"
IDLE_TIMEOUT_S = 20
TEMPLATE = "https://flux.example/{cluster}/{namespace}/{name}/{sha}"
KUSTOMIZE = "/apis/kustomize.toolkit.fluxcd.io/v1"
SOURCE = "/apis/source.toolkit.fluxcd.io/v1"


@dataclass(frozen=True, slots=True)
class ForgeCase:
    """One emulated forge as a push names it, and what it must receive."""

    kind: str
    repo_url: str
    project: str
    path_prefix: str
    states: dict[str, str]  # our state -> the forge's word


GITLAB = ForgeCase(
    kind="gitlab",
    repo_url="https://gitlab.test/group/fleet.git",
    project="group/fleet",
    path_prefix="/api/v4/projects/group%2Ffleet/statuses/",
    states={
        "pending": "pending",
        "running": "running",
        "success": "success",
        "failure": "failed",
        "superseded": "canceled",
    },
)
GITHUB = ForgeCase(
    kind="github",
    repo_url="https://github.test/acme/fleet.git",
    project="acme/fleet",
    path_prefix="/repos/acme/fleet/statuses/",
    states={
        "pending": "pending",
        "running": "pending",
        "success": "success",
        "failure": "failure",
        "superseded": "error",
    },
)
BOTH = pytest.mark.parametrize("case", [GITLAB, GITHUB], ids=["gitlab", "github"])


# -- Flux status as kustomize-controller writes it --------------------------------------------


def fetching(sha: str) -> str:
    return f"Fetching manifests for revision main@sha1:{sha} with a timeout of 4m30s"


def reconciling(sha: str, *, applied: str | None = None) -> dict[str, Any]:
    status: dict[str, Any] = {
        "observedGeneration": 1,
        "conditions": [
            condition("Reconciling", "True", "ProgressingWithRetry", fetching(sha)),
            condition("Ready", "Unknown", "Progressing", "Reconciliation in progress"),
        ],
    }
    if applied is not None:
        status["lastAppliedRevision"] = f"main@sha1:{applied}"
        status["lastAttemptedRevision"] = f"main@sha1:{applied}"
    return status


def ready(sha: str, **extra: Any) -> dict[str, Any]:
    return {
        "observedGeneration": 1,
        "conditions": [
            condition(
                "Ready", "True", "ReconciliationSucceeded", f"Applied revision: main@sha1:{sha}"
            )
        ],
        "lastAppliedRevision": f"main@sha1:{sha}",
        "lastAttemptedRevision": f"main@sha1:{sha}",
        **extra,
    }


def failed(sha: str, *, message: str, applied: str) -> dict[str, Any]:
    return {
        "observedGeneration": 1,
        "conditions": [condition("Ready", "False", "ReconciliationFailed", message)],
        "lastAppliedRevision": f"main@sha1:{applied}",
        "lastAttemptedRevision": f"main@sha1:{sha}",
    }


def condition(kind: str, status: str, reason: str, message: str) -> dict[str, str]:
    return {
        "type": kind,
        "status": status,
        "reason": reason,
        "message": message,
        "lastTransitionTime": "2024-01-01T00:00:00Z",
        "observedGeneration": 1,
    }


# -- the stack under test ---------------------------------------------------------------------


class Stack:
    """Emulated forges, real watches and the service, wired like the app will wire them."""

    def __init__(
        self,
        *,
        server: envtest.KubeTestServer,
        namespace: str,
        github: EmulatedGitHub,
        gitlab: EmulatedGitLab,
    ) -> None:
        self.server = server
        self.namespace = namespace
        self.github = github
        self.gitlab = gitlab
        self.registry = CollectorRegistry()
        self.sleeps: list[float] = []
        self.secrets: dict[tuple[str, str], dict[str, bytes]] = {}
        self.seen: set[tuple[str, str]] = set()  # (object name, resourceVersion) the watches saw
        token_ref = {"namespace": namespace, "name": TOKEN_SECRET}
        self.settings = StatusSettings.model_validate(
            {
                "cluster": CLUSTER,
                "target_url": TEMPLATE,
                "forges": [
                    {
                        "kind": "github",
                        "host": "github.test",
                        "api_base_url": github.base_url,
                        "token_secret_ref": {**token_ref, "key": "github"},
                    },
                    {
                        "kind": "gitlab",
                        "host": "gitlab.test",
                        "api_base_url": gitlab.base_url,
                        "token_secret_ref": {**token_ref, "key": "gitlab"},
                    },
                ],
            }
        )
        self.service = StatusService(
            settings=self.settings,
            secret_lookup=lambda ns, name: self.secrets.get((ns, name)),
            registry=self.registry,
            sleep=self._sleep,
        )
        self.ks = ObjectRef("kustomize.toolkit.fluxcd.io/v1", "Kustomization", namespace, KS_NAME)

    @property
    def status_name(self) -> str:
        return f"flux/{CLUSTER}/Kustomization/{self.namespace}/{KS_NAME}"

    def forge(self, case: ForgeCase) -> EmulatedForge:
        return self.gitlab if case is GITLAB else self.github

    def other(self, case: ForgeCase) -> EmulatedForge:
        return self.github if case is GITLAB else self.gitlab

    async def _sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        await asyncio.sleep(0)

    # watch callbacks: what the app will do
    def on_secret(self, event: str, obj: dict[str, Any]) -> None:
        key = raw.object_key(obj)
        if event == raw.DELETED:
            self.secrets.pop(key, None)
        else:
            self.secrets[key] = decode_secret_data(obj)
        self._saw(obj)

    def on_kustomization(self, event: str, obj: dict[str, Any]) -> None:
        self.service.on_flux_object(event, obj, kind="Kustomization")
        self._saw(obj)

    def _saw(self, obj: dict[str, Any]) -> None:
        metadata = obj.get("metadata", {})
        self.seen.add((metadata.get("name", ""), str(metadata.get("resourceVersion", ""))))

    # actions
    async def write_secret(self, data: dict[str, str], *, create: bool = False) -> None:
        encoded = {key: base64.b64encode(value.encode()).decode() for key, value in data.items()}
        path = f"/api/v1/namespaces/{self.namespace}/secrets"
        if create:
            body = await kube(
                self.server,
                "POST",
                path,
                body={"metadata": {"name": TOKEN_SECRET}, "data": encoded},
            )
        else:
            body = await kube(
                self.server,
                "PATCH",
                f"{path}/{TOKEN_SECRET}",
                body={"data": encoded},
                content_type="application/merge-patch+json",
            )
        await self.wait_seen(body)

    async def create_objects(self) -> None:
        await kube(
            self.server,
            "POST",
            f"{SOURCE}/namespaces/{self.namespace}/gitrepositories",
            body={
                "apiVersion": "source.toolkit.fluxcd.io/v1",
                "kind": "GitRepository",
                "metadata": {"name": "fleet"},
                "spec": {"url": GITLAB.repo_url, "interval": "10m", "ref": {"branch": "main"}},
            },
        )
        body = await kube(
            self.server,
            "POST",
            f"{KUSTOMIZE}/namespaces/{self.namespace}/kustomizations",
            body={
                "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
                "kind": "Kustomization",
                "metadata": {"name": KS_NAME},
                "spec": {
                    "interval": "10m",
                    "path": "./apps",
                    "prune": True,
                    "sourceRef": {"kind": "GitRepository", "name": "fleet"},
                },
            },
        )
        await self.wait_seen(body)

    def push(self, case: ForgeCase, sha: str) -> None:
        self.service.on_push(
            GitPush(
                source=case.kind,
                event="push",
                repo_urls=(case.repo_url,),
                ref="refs/heads/main",
                before=SHA_OLD,
                after=sha,
                delivery_id=f"delivery-{sha[:8]}",
            ),
            downstream=[self.ks],
        )

    async def set_status(self, status: dict[str, Any]) -> None:
        """PATCH the status subresource as kustomize-controller does; wait until the watch
        delivered that version to the service and the reporter sent what it produced."""
        body = await kube(
            self.server,
            "PATCH",
            f"{KUSTOMIZE}/namespaces/{self.namespace}/kustomizations/{KS_NAME}/status",
            body={"status": status},
            content_type="application/merge-patch+json",
        )
        await self.wait_seen(body)
        await self.idle()

    async def wait_seen(self, body: dict[str, Any]) -> None:
        marker = (body["metadata"]["name"], str(body["metadata"]["resourceVersion"]))

        async def probe() -> bool:
            return marker in self.seen

        await eventually(probe, check=bool)

    async def idle(self) -> None:
        await asyncio.wait_for(self.service.reporter.wait_idle(), IDLE_TIMEOUT_S)

    def metric(self, name: str, **labels: str) -> float:
        return self.registry.get_sample_value(name, labels) or 0.0

    # expectations
    def expected_body(self, case: ForgeCase, *, state: str, sha: str, description: str) -> Any:
        target_url = f"https://flux.example/{CLUSTER}/{self.namespace}/{KS_NAME}/{sha}"
        if case is GITLAB:
            return {
                "state": case.states[state],
                "name": self.status_name,
                "description": description,
                "target_url": target_url,
                "ref": "main",
            }
        return {
            "state": case.states[state],
            "context": self.status_name,
            "description": description,
            "target_url": target_url,
        }

    def assert_calls(self, case: ForgeCase, expected: list[tuple[str, str, str]]) -> None:
        """Exactly these (state, sha, description) calls, in order, each authenticated and 201."""
        forge = self.forge(case)
        assert [call.raw_path for call in forge.calls] == [
            case.path_prefix + sha for _, sha, _ in expected
        ]
        assert [call.body for call in forge.calls] == [
            self.expected_body(case, state=state, sha=sha, description=description)
            for state, sha, description in expected
        ]
        assert [call.answered for call in forge.calls] == [201] * len(expected)
        for call in forge.calls:
            if case is GITLAB:
                assert call.headers["PRIVATE-TOKEN"] == GITLAB_TOKEN
            else:
                assert call.headers["Authorization"] == f"Bearer {GITHUB_TOKEN}"
        assert self.other(case).calls == []


@pytest.fixture
async def github() -> AsyncIterator[EmulatedGitHub]:
    forge = EmulatedGitHub(token=GITHUB_TOKEN, projects={"acme/fleet"})
    await forge.start()
    yield forge
    await forge.close()


@pytest.fixture
async def gitlab() -> AsyncIterator[EmulatedGitLab]:
    forge = EmulatedGitLab(token=GITLAB_TOKEN, projects={"group/fleet"})
    await forge.start()
    yield forge
    await forge.close()


@pytest.fixture
def logs() -> Any:
    """Every log entry of the test; none may carry a token."""
    with capture_logs() as entries:
        yield entries
    for entry in entries:
        text = repr(entry)
        assert GITHUB_TOKEN not in text and GITLAB_TOKEN not in text


@contextlib.asynccontextmanager
async def running_stack(
    *,
    server: envtest.KubeTestServer,
    namespace: str,
    github: EmulatedGitHub,
    gitlab: EmulatedGitLab,
    tokens: dict[str, str] | None,
) -> AsyncIterator[Stack]:
    stack = Stack(server=server, namespace=namespace, github=github, gitlab=gitlab)
    if tokens is not None:
        await kube(
            server,
            "POST",
            f"/api/v1/namespaces/{namespace}/secrets",
            body={
                "metadata": {"name": TOKEN_SECRET},
                "data": {k: base64.b64encode(v.encode()).decode() for k, v in tokens.items()},
            },
        )
    client = await KubeClient.connect(kubeconfig=server.kubeconfig_path)
    states = [watching.WatchState(), watching.WatchState()]
    watches: list[tuple[resources.ResourceType, Callable[[str, dict[str, Any]], None]]] = [
        (resources.SECRET, stack.on_secret),
        (resources.KUSTOMIZATION, stack.on_kustomization),
    ]
    tasks = [
        asyncio.create_task(
            watching.watch_forever(
                client=client,
                resource=resource,
                on_event=on_event,
                settings=WatchSettings(),
                state=state,
                namespace=namespace,
            )
        )
        for (resource, on_event), state in zip(watches, states, strict=True)
    ]
    try:
        await asyncio.wait_for(asyncio.gather(*(s.synced.wait() for s in states)), 30)
        await stack.service.start()
        await stack.create_objects()
        yield stack
    finally:
        await stack.service.stop(drain_timeout_s=5)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await client.close()


@pytest.fixture
async def stack(
    kube_server: envtest.KubeTestServer,
    namespace: str,
    github: EmulatedGitHub,
    gitlab: EmulatedGitLab,
) -> AsyncIterator[Stack]:
    async with running_stack(
        server=kube_server,
        namespace=namespace,
        github=github,
        gitlab=gitlab,
        tokens={"github": GITHUB_TOKEN, "gitlab": GITLAB_TOKEN},
    ) as running:
        yield running


# -- the tests --------------------------------------------------------------------------------


@BOTH
async def test_push_then_reconcile_then_ready_is_the_full_sequence(
    stack: Stack, case: ForgeCase, logs: list[dict[str, Any]]
) -> None:
    stack.push(case, SHA_A)
    await stack.idle()
    await stack.set_status(reconciling(SHA_A))
    await stack.set_status(ready(SHA_A))

    stack.assert_calls(
        case,
        [
            ("pending", SHA_A, "Reconciliation requested"),
            ("running", SHA_A, f"Flux is reconciling: {fetching(SHA_A)}"),
            ("success", SHA_A, f"Applied revision: main@sha1:{SHA_A}"),
        ],
    )
    assert stack.forge(case).states(name=stack.status_name) == [
        case.states[s] for s in ("pending", "running", "success")
    ]
    assert (
        stack.metric("gitops_receiver_status_calls_total", forge=case.kind, outcome="created") == 3
    )


@BOTH
async def test_ready_false_posts_the_failure_message_trimmed_to_the_forge_limit(
    stack: Stack, case: ForgeCase, logs: list[dict[str, Any]]
) -> None:
    # The object already applied an older commit before the push (what the first list shows).
    await stack.set_status(ready(SHA_OLD))
    assert stack.forge(case).calls == []  # nobody pushed SHA_OLD: nothing to report

    stack.push(case, SHA_A)
    await stack.idle()
    await stack.set_status(reconciling(SHA_A, applied=SHA_OLD))
    message = (
        'Deployment/apps/web dry-run failed (Invalid): Deployment.apps "web" is invalid: '
        + "spec.template.spec.containers[0].image: Required value; " * 6
    )
    await stack.set_status(failed(SHA_A, message=message, applied=SHA_OLD))

    limit = 255 if case is GITLAB else 140
    assert len(message) > limit
    stack.assert_calls(
        case,
        [
            ("pending", SHA_A, "Reconciliation requested"),
            ("running", SHA_A, f"Flux is reconciling: {fetching(SHA_A)}"),
            ("failure", SHA_A, message[: limit - 1] + "…"),
        ],
    )


@BOTH
async def test_a_newer_applied_commit_supersedes_the_older_pending_one(
    stack: Stack, case: ForgeCase, logs: list[dict[str, Any]]
) -> None:
    stack.push(case, SHA_A)
    stack.push(case, SHA_B)
    await stack.idle()
    await stack.set_status(reconciling(SHA_B))
    await stack.set_status(ready(SHA_B))

    stack.assert_calls(
        case,
        [
            ("pending", SHA_A, "Reconciliation requested"),
            ("pending", SHA_B, "Reconciliation requested"),
            ("running", SHA_B, f"Flux is reconciling: {fetching(SHA_B)}"),
            ("success", SHA_B, f"Applied revision: main@sha1:{SHA_B}"),
            ("superseded", SHA_A, f"Superseded: Flux applied a newer revision ({SHA_B[:8]})"),
        ],
    )


async def test_the_same_status_twice_is_one_call(stack: Stack, logs: list[dict[str, Any]]) -> None:
    stack.push(GITLAB, SHA_A)
    stack.push(GITLAB, SHA_A)  # a redelivery of the same push
    await stack.idle()
    await stack.set_status(reconciling(SHA_A))
    await stack.set_status({**reconciling(SHA_A), "lastHandledReconcileAt": "1"})
    await stack.set_status(ready(SHA_A))
    # A periodic reconcile of the applied commit: the watch sees a new version, same status.
    await stack.set_status(ready(SHA_A, lastHandledReconcileAt="2"))
    await stack.set_status(ready(SHA_A, lastHandledReconcileAt="3"))

    stack.assert_calls(
        GITLAB,
        [
            ("pending", SHA_A, "Reconciliation requested"),
            ("running", SHA_A, f"Flux is reconciling: {fetching(SHA_A)}"),
            ("success", SHA_A, f"Applied revision: main@sha1:{SHA_A}"),
        ],
    )


@BOTH
async def test_a_rate_limit_answer_is_waited_out_then_retried(
    stack: Stack, case: ForgeCase, logs: list[dict[str, Any]]
) -> None:
    stack.forge(case).fail_next(
        1, 429, headers={"Retry-After": "7"}, body={"message": "API rate limit exceeded"}
    )
    stack.push(case, SHA_A)
    await stack.idle()

    forge = stack.forge(case)
    assert [call.answered for call in forge.calls] == [429, 201]
    assert [call.body for call in forge.calls] == [
        stack.expected_body(
            case, state="pending", sha=SHA_A, description="Reconciliation requested"
        )
    ] * 2
    assert stack.sleeps == [7.0]
    assert forge.states(name=stack.status_name) == ["pending"]
    assert (
        stack.metric("gitops_receiver_status_calls_total", forge=case.kind, outcome="rate_limited")
        == 1
    )


async def test_a_missing_token_makes_no_call_one_warning_and_a_rotated_secret_is_used(
    kube_server: envtest.KubeTestServer,
    namespace: str,
    github: EmulatedGitHub,
    gitlab: EmulatedGitLab,
    logs: list[dict[str, Any]],
) -> None:
    async with running_stack(
        server=kube_server, namespace=namespace, github=github, gitlab=gitlab, tokens=None
    ) as stack:
        stack.push(GITLAB, SHA_A)
        stack.push(GITLAB, SHA_C)
        await stack.idle()
        await stack.write_secret({"github": GITHUB_TOKEN}, create=True)  # no `gitlab` key
        stack.push(GITLAB, SHA_B)
        await stack.idle()
        assert gitlab.calls == [] and github.calls == []
        assert stack.metric("gitops_receiver_status_dropped_total", reason="no_token") == 3

        await stack.write_secret({"gitlab": GITLAB_TOKEN})  # the token arrives
        await stack.set_status(reconciling(SHA_B))

    warnings = [entry for entry in logs if entry["log_level"] == "warning"]
    assert [(w["event"], w.get("problem")) for w in warnings] == [
        ("status_token_unavailable", "Secret not found (or not watched)"),
        ("status_token_missing", None),
        ("status_token_unavailable", "Secret has no key 'gitlab'"),
    ]
    assert [w["secret"] for w in warnings if "secret" in w] == [f"{namespace}/{TOKEN_SECRET}"] * 2
    assert [
        (call.answered, call.body["state"] if call.body else None) for call in gitlab.calls
    ] == [(201, "running")]
    assert gitlab.calls[0].headers["PRIVATE-TOKEN"] == GITLAB_TOKEN


async def test_a_push_to_an_unconfigured_forge_makes_no_call_and_one_debug_line(
    stack: Stack, logs: list[dict[str, Any]]
) -> None:
    other = ForgeCase(
        kind="bitbucket",
        repo_url="https://bitbucket.test/acme/fleet.git",
        project="acme/fleet",
        path_prefix="",
        states={},
    )
    stack.push(other, SHA_A)
    await stack.set_status(reconciling(SHA_A))
    await stack.set_status(ready(SHA_A))

    assert stack.github.calls == [] and stack.gitlab.calls == []
    assert [
        (entry["log_level"], entry["forge_host"], entry["sha"])
        for entry in logs
        if entry["event"] == "status_forge_not_configured"
    ] == [("debug", "bitbucket.test", SHA_A)]
