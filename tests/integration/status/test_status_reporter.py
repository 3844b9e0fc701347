"""StatusReporter + Journey against emulated GitHub and GitLab APIs on 127.0.0.1.

The emulators check path, auth header and body of every call and answer like the real APIs;
`sleep` is injected and records the waits, so no test really waits.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest
from prometheus_client import CollectorRegistry
from structlog.testing import capture_logs

from receiver.config import StatusLimits
from receiver.events import ObjectRef
from receiver.status import flux
from receiver.status.journey import Journey
from receiver.status.model import (
    CommitState,
    ForgeConfig,
    ForgeKind,
    ForgeTarget,
    StatusNaming,
    StatusUpdate,
)
from receiver.status.reporter import ReporterMetrics, StatusReporter
from tests.support.forges import EmulatedGitHub, EmulatedGitLab

SHA_A = "a1" * 20
SHA_B = "b2" * 20
NOW = 1_700_000_000.0
# The retry jitter every harness draws: each backoff is 75% of its capped value.
JITTER = 0.5
KS = ObjectRef("kustomize.toolkit.fluxcd.io/v1", "Kustomization", "apps", "web")
NAME = "flux/test/Kustomization/apps/web"
NAMING = StatusNaming(cluster="test", target_url_template="https://flux.example/{namespace}/{name}")
IDLE_TIMEOUT_S = 10


class Harness:
    """A reporter wired to the emulators, with a private registry and recorded sleeps."""

    def __init__(
        self,
        *forges: EmulatedGitHub | EmulatedGitLab,
        limits: StatusLimits | None = None,
        tokens: dict[str, str] | None = None,
        sleep: Callable[[float], Awaitable[None]] | None = None,
    ) -> None:
        self.registry = CollectorRegistry()
        self.sleeps: list[float] = []
        configs = [
            ForgeConfig(
                kind=ForgeKind.GITHUB if isinstance(forge, EmulatedGitHub) else ForgeKind.GITLAB,
                host=forge.host,
                api_base_url=forge.base_url,
            )
            for forge in forges
        ]
        self.tokens = (
            tokens if tokens is not None else {forge.host: forge.token for forge in forges}
        )
        self.token_calls: list[tuple[str, str | None]] = []
        self.reporter = StatusReporter(
            forges=configs,
            token_for=self.token_for,
            metrics=ReporterMetrics(self.registry),
            limits=limits,
            sleep=sleep or self.sleep,
            clock=lambda: NOW,
            random=lambda: JITTER,
        )

    def token_for(self, host: str, namespace: str | None) -> str | None:
        self.token_calls.append((host, namespace))
        return self.tokens.get(host)

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        await asyncio.sleep(0)

    async def idle(self) -> None:
        await asyncio.wait_for(self.reporter.wait_idle(), IDLE_TIMEOUT_S)

    def metric(self, name: str, **labels: str) -> float:
        return self.registry.get_sample_value(name, labels) or 0.0


def kustomization(
    *, ready: str, attempted: str, applied: str = "", message: str = "", reconciling: bool = False
) -> dict[str, object]:
    conditions: list[dict[str, str]] = [
        {"type": "Ready", "status": ready, "reason": "R", "message": message}
    ]
    if reconciling:
        conditions.append(
            {"type": "Reconciling", "status": "True", "reason": "Progressing", "message": message}
        )
    return {
        "apiVersion": KS.api_version,
        "kind": KS.kind,
        "metadata": {"namespace": KS.namespace, "name": KS.name, "generation": 1},
        "status": {
            "observedGeneration": 1,
            "conditions": conditions,
            "lastAttemptedRevision": attempted,
            "lastAppliedRevision": applied,
        },
    }


def observe(obj: dict[str, object]) -> flux.Observation:
    observation = flux.observe(obj)
    assert observation is not None
    return observation


async def drive_full_journey(
    harness: Harness,
    journey: Journey,
    target: ForgeTarget,
    submit: Callable[[list[StatusUpdate]], int],
) -> None:
    submit(journey.requested(sha=SHA_A, ref="refs/heads/main", target=target, objects=[KS]))
    submit(
        journey.observed(
            observe(
                kustomization(
                    ready="Unknown",
                    reconciling=True,
                    attempted=f"main@sha1:{SHA_A}",
                    message=f"Fetching manifests for revision main@sha1:{SHA_A} with a timeout of 4m30s",
                )
            )
        )
    )
    submit(
        journey.observed(
            observe(
                kustomization(
                    ready="True",
                    attempted=f"main@sha1:{SHA_A}",
                    applied=f"main@sha1:{SHA_A}",
                    message=f"Applied revision: main@sha1:{SHA_A}",
                )
            )
        )
    )
    await harness.idle()


async def test_gitlab_full_sequence_in_order(gitlab_api: EmulatedGitLab) -> None:
    harness = Harness(gitlab_api)
    await harness.reporter.start()
    journey = Journey(naming=NAMING)
    target = ForgeTarget(gitlab_api.host, "group/sub/app")
    await drive_full_journey(harness, journey, target, harness.reporter.submit_all)
    await harness.reporter.stop()

    assert gitlab_api.states(name=NAME) == ["pending", "running", "success"]
    assert [call.raw_path for call in gitlab_api.calls] == [
        f"/api/v4/projects/group%2Fsub%2Fapp/statuses/{SHA_A}"
    ] * 3
    assert all(call.headers["PRIVATE-TOKEN"] == "glpat-secret" for call in gitlab_api.calls)
    first = gitlab_api.posted[0]
    assert (first.ref, first.target_url, first.description) == (
        "main",
        "https://flux.example/apps/web",
        "Reconciliation requested",
    )
    assert harness.token_calls[0] == (gitlab_api.host, "apps")
    assert (
        harness.metric("gitops_receiver_status_calls_total", forge="gitlab", outcome="created") == 3
    )


async def test_github_full_sequence_maps_running_to_pending(github_api: EmulatedGitHub) -> None:
    harness = Harness(github_api)
    await harness.reporter.start()
    journey = Journey(naming=NAMING)
    await drive_full_journey(
        harness, journey, ForgeTarget(github_api.host, "acme/app"), harness.reporter.submit_all
    )
    await harness.reporter.stop()

    assert github_api.states(name=NAME) == ["pending", "pending", "success"]
    assert [p.description.split(":")[0] for p in github_api.posted] == [
        "Reconciliation requested",
        "Flux is reconciling",
        "Applied revision",
    ]
    assert all(call.headers["Authorization"] == "Bearer ghp-secret" for call in github_api.calls)
    assert {call.raw_path for call in github_api.calls} == {f"/repos/acme/app/statuses/{SHA_A}"}


async def test_failure_message_is_trimmed_to_the_forge_limit(github_api: EmulatedGitHub) -> None:
    harness = Harness(github_api)
    await harness.reporter.start()
    journey = Journey(naming=NAMING)
    message = "Deployment/apps/web health check failed: " + "x" * 300
    harness.reporter.submit_all(
        journey.requested(sha=SHA_A, target=ForgeTarget(github_api.host, "acme/app"), objects=[KS])
    )
    harness.reporter.submit_all(
        journey.observed(
            observe(kustomization(ready="False", attempted=f"main@sha1:{SHA_A}", message=message))
        )
    )
    await harness.idle()
    await harness.reporter.stop()

    failure = github_api.posted[-1]
    assert failure.state == "failure"
    assert len(failure.description) == 140, "GitHub answers 422 over 140: the emulator would refuse"
    assert failure.description.startswith("Deployment/apps/web health check failed: xxx")
    assert [call.answered for call in github_api.calls] == [201, 201]


async def test_supersession_gitlab_canceled_github_error(
    gitlab_api: EmulatedGitLab, github_api: EmulatedGitHub
) -> None:
    harness = Harness(gitlab_api, github_api)
    await harness.reporter.start()
    journey = Journey(naming=NAMING)
    lab = ForgeTarget(gitlab_api.host, "group/sub/app")
    hub = ForgeTarget(github_api.host, "acme/app")
    other = ObjectRef(KS.api_version, KS.kind, "apps", "api")
    for sha in (SHA_A, SHA_B):
        harness.reporter.submit_all(journey.requested(sha=sha, target=lab, objects=[KS]))
        harness.reporter.submit_all(journey.requested(sha=sha, target=hub, objects=[other]))
    for obj in (KS, other):
        raw = kustomization(
            ready="True", attempted=f"main@sha1:{SHA_B}", applied=f"main@sha1:{SHA_B}"
        )
        raw["metadata"] = {"namespace": obj.namespace, "name": obj.name}
        harness.reporter.submit_all(journey.observed(observe(raw)))
    await harness.idle()
    await harness.reporter.stop()

    lab_a = [p.state for p in gitlab_api.posted if p.sha == SHA_A]
    hub_a = [p for p in github_api.posted if p.sha == SHA_A]
    assert lab_a == ["pending", "canceled"]
    assert [p.state for p in hub_a] == ["pending", "error"]
    assert hub_a[-1].description == f"Superseded: Flux applied a newer revision ({SHA_B[:8]})"
    assert [p.state for p in github_api.posted if p.sha == SHA_B] == ["pending", "success"]


async def test_same_update_twice_is_one_call(gitlab_api: EmulatedGitLab) -> None:
    harness = Harness(gitlab_api)
    update = StatusUpdate(
        gitlab_api.host, "42", SHA_A, NAME, CommitState.RUNNING, "Reconciling", namespace="apps"
    )
    assert harness.reporter.submit(update) is True
    assert harness.reporter.submit(update) is False
    await harness.reporter.start()
    await harness.idle()
    assert harness.reporter.submit(update) is False, "already posted"
    await harness.reporter.stop()
    assert len(gitlab_api.calls) == 1
    assert gitlab_api.calls[0].raw_path == f"/api/v4/projects/42/statuses/{SHA_A}"


async def test_gitlab_cannot_transition_is_already_set(gitlab_api: EmulatedGitLab) -> None:
    update = StatusUpdate(
        gitlab_api.host, "group/sub/app", SHA_A, NAME, CommitState.RUNNING, "Reconciling"
    )
    for _ in range(2):  # two reporters, as across a restart: the second cannot know
        harness = Harness(gitlab_api)
        harness.reporter.submit(update)
        await harness.reporter.start()
        await harness.idle()
        await harness.reporter.stop()
    assert [call.answered for call in gitlab_api.calls] == [201, 400]
    assert (
        harness.metric("gitops_receiver_status_calls_total", forge="gitlab", outcome="already_set")
        == 1
    )
    assert harness.metric("gitops_receiver_status_dropped_total", reason="rejected") == 0


async def test_rate_limit_wait_then_success(
    gitlab_api: EmulatedGitLab, github_api: EmulatedGitHub
) -> None:
    harness = Harness(gitlab_api, github_api)
    gitlab_api.fail_next(1, 429, headers={"Retry-After": "7"}, body={"message": "Retry later"})
    github_api.fail_next(
        1,
        403,
        headers={"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(int(NOW) + 90)},
        body={"message": "API rate limit exceeded"},
    )
    harness.reporter.submit(
        StatusUpdate(gitlab_api.host, "group/sub/app", SHA_A, NAME, CommitState.PENDING, "p")
    )
    harness.reporter.submit(
        StatusUpdate(github_api.host, "acme/app", SHA_A, NAME, CommitState.PENDING, "p")
    )
    await harness.reporter.start()
    await harness.idle()
    await harness.reporter.stop()

    assert sorted(harness.sleeps) == [7, 90]
    assert [call.answered for call in gitlab_api.calls] == [429, 201]
    assert [call.answered for call in github_api.calls] == [403, 201]
    assert gitlab_api.states() == ["pending"] and github_api.states() == ["pending"]
    assert (
        harness.metric("gitops_receiver_status_calls_total", forge="github", outcome="rate_limited")
        == 1
    )


async def test_5xx_retried_with_capped_backoff(github_api: EmulatedGitHub) -> None:
    limits = StatusLimits(retry_initial_s=1, retry_max_s=3, retry_attempts=5)
    harness = Harness(github_api, limits=limits)
    github_api.fail_next(3, 502)
    harness.reporter.submit(
        StatusUpdate(github_api.host, "acme/app", SHA_A, NAME, CommitState.SUCCESS, "ok")
    )
    await harness.reporter.start()
    await harness.idle()
    await harness.reporter.stop()
    assert harness.sleeps == [0.75 * 1, 0.75 * 2, 0.75 * 3]
    assert [call.answered for call in github_api.calls] == [502, 502, 502, 201]
    assert github_api.states() == ["success"]


async def test_5xx_gives_up_after_retry_attempts(github_api: EmulatedGitHub) -> None:
    harness = Harness(github_api, limits=StatusLimits(retry_attempts=2))
    github_api.fail_next(5, 500)
    harness.reporter.submit(
        StatusUpdate(github_api.host, "acme/app", SHA_A, NAME, CommitState.SUCCESS, "ok")
    )
    await harness.reporter.start()
    await harness.idle()
    await harness.reporter.stop()
    assert len(github_api.calls) == 2
    assert harness.metric("gitops_receiver_status_dropped_total", reason="retries_exhausted") == 1


async def test_each_update_reports_how_it_ended(github_api: EmulatedGitHub) -> None:
    """The inspector hears each status's end: the forge's answer, or why it was dropped."""
    harness = Harness(github_api)
    ended: list[tuple[str, str, str]] = []
    harness.reporter.on_done = lambda update, outcome: ended.append(
        (update.sha, update.state.value, outcome)
    )
    harness.reporter.submit(
        StatusUpdate(github_api.host, "acme/app", SHA_A, NAME, CommitState.PENDING, "p")
    )
    await harness.reporter.start()
    await harness.idle()
    github_api.fail_next(1, 422)
    harness.reporter.submit(
        StatusUpdate(github_api.host, "acme/app", SHA_B, NAME, CommitState.SUCCESS, "ok")
    )
    await harness.idle()
    await harness.reporter.stop()
    assert ended == [(SHA_A, "pending", "created"), (SHA_B, "success", "dropped: rejected")]


@pytest.mark.parametrize("status", [401, 404, 422])
async def test_refusals_are_not_retried(github_api: EmulatedGitHub, status: int) -> None:
    harness = Harness(github_api)
    github_api.fail_next(1, status)
    harness.reporter.submit(
        StatusUpdate(github_api.host, "acme/app", SHA_A, NAME, CommitState.PENDING, "p")
    )
    await harness.reporter.start()
    await harness.idle()
    await harness.reporter.stop()
    assert len(github_api.calls) == 1 and harness.sleeps == []
    assert harness.metric("gitops_receiver_status_dropped_total", reason="rejected") == 1


async def test_wrong_token_and_unknown_project_are_refused_by_the_forge(
    github_api: EmulatedGitHub,
) -> None:
    harness = Harness(github_api, tokens={github_api.host: "wrong"})
    harness.reporter.submit(
        StatusUpdate(github_api.host, "acme/app", SHA_A, NAME, CommitState.PENDING, "p")
    )
    await harness.reporter.start()
    await harness.idle()
    harness.tokens[github_api.host] = github_api.token
    harness.reporter.submit(
        StatusUpdate(github_api.host, "acme/other", SHA_A, NAME, CommitState.PENDING, "p")
    )
    await harness.idle()
    await harness.reporter.stop()
    assert [call.answered for call in github_api.calls] == [401, 404]
    assert github_api.posted == []
    assert (
        harness.metric("gitops_receiver_status_calls_total", forge="github", outcome="rejected")
        == 2
    )


async def test_missing_token_makes_no_call(github_api: EmulatedGitHub) -> None:
    harness = Harness(github_api, tokens={})
    with capture_logs() as logs:
        harness.reporter.submit(
            StatusUpdate(
                github_api.host, "acme/app", SHA_A, NAME, CommitState.PENDING, "p", namespace="apps"
            )
        )
        await harness.reporter.start()
        await harness.idle()
        await harness.reporter.stop()
    assert github_api.calls == []
    assert harness.token_calls == [(github_api.host, "apps")]
    assert harness.metric("gitops_receiver_status_dropped_total", reason="no_token") == 1
    assert [entry["event"] for entry in logs if entry["log_level"] == "warning"] == [
        "status_token_missing"
    ]


async def test_unconfigured_host_makes_no_call_and_one_debug_line(
    github_api: EmulatedGitHub,
) -> None:
    harness = Harness(github_api)
    journey = Journey(naming=NAMING)
    objects = [ObjectRef(KS.api_version, KS.kind, "apps", name) for name in ("a", "b", "c")]
    with capture_logs() as logs:
        updates = journey.requested(
            sha=SHA_A, target=ForgeTarget("git.unknown.example", "x/y"), objects=objects
        )
        assert harness.reporter.submit_all(updates) == 0
        await harness.reporter.start()
        await harness.idle()
        await harness.reporter.stop()
    assert github_api.calls == []
    assert [entry for entry in logs if entry["event"] == "status_forge_not_configured"] == [
        {
            "event": "status_forge_not_configured",
            "log_level": "debug",
            "forge_host": "git.unknown.example",
            "sha": SHA_A,
        }
    ]


async def test_queue_overflow_drops_superseded_first_then_oldest(
    gitlab_api: EmulatedGitLab,
) -> None:
    harness = Harness(gitlab_api, limits=StatusLimits(max_queue=3))
    host = gitlab_api.host

    def update(sha: str, name: str, state: CommitState) -> StatusUpdate:
        return StatusUpdate(host, "group/sub/app", sha, name, state, state.value)

    submit = harness.reporter.submit
    submit(update(SHA_A, "one", CommitState.PENDING))  # 1: dropped first (superseded commit)
    submit(update(SHA_B, "two", CommitState.PENDING))  # 2: dropped third (oldest)
    submit(update(SHA_A, "one", CommitState.RUNNING))  # 3: dropped second (superseded commit)
    submit(update(SHA_A, "one", CommitState.SUPERSEDED))  # full: drops 1
    submit(update(SHA_B, "three", CommitState.PENDING))  # full: drops 3
    submit(update(SHA_B, "four", CommitState.PENDING))  # full: nothing superseded left, drops 2
    assert harness.reporter.queued == 3
    assert (
        harness.metric("gitops_receiver_status_dropped_total", reason="queue_full_superseded") == 2
    )
    assert harness.metric("gitops_receiver_status_dropped_total", reason="queue_full") == 1
    await harness.reporter.start()
    await harness.idle()
    await harness.reporter.stop()
    assert [(p.name, p.state) for p in gitlab_api.posted] == [
        ("one", "canceled"),
        ("three", "pending"),
        ("four", "pending"),
    ]


async def test_stop_drains_within_its_bound(github_api: EmulatedGitHub) -> None:
    harness = Harness(github_api)
    await harness.reporter.start()
    for index in range(5):
        harness.reporter.submit(
            StatusUpdate(github_api.host, "acme/app", SHA_A, f"n{index}", CommitState.PENDING, "p")
        )
    await harness.reporter.stop(drain_timeout_s=IDLE_TIMEOUT_S)
    assert len(github_api.posted) == 5
    assert (
        harness.reporter.submit(
            StatusUpdate(github_api.host, "acme/app", SHA_B, "n", CommitState.PENDING, "p")
        )
        is False
    )


async def test_stop_cancels_a_stuck_wait_and_counts_what_is_left(
    github_api: EmulatedGitHub,
) -> None:
    waiting = asyncio.Event()
    never = asyncio.Event()

    async def stuck_sleep(seconds: float) -> None:
        waiting.set()
        await never.wait()

    harness = Harness(github_api, sleep=stuck_sleep)
    github_api.fail_next(1, 429, headers={"Retry-After": "3600"})
    for index in range(3):
        harness.reporter.submit(
            StatusUpdate(github_api.host, "acme/app", SHA_A, f"n{index}", CommitState.PENDING, "p")
        )
    await harness.reporter.start()
    await asyncio.wait_for(waiting.wait(), IDLE_TIMEOUT_S)
    await harness.reporter.stop(drain_timeout_s=0.05)
    assert harness.metric("gitops_receiver_status_dropped_total", reason="shutdown") == 3
    assert [call.answered for call in github_api.calls] == [429]
    assert github_api.posted == []
