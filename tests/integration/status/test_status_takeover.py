"""The reporter across leadership changes, against emulated GitHub and GitLab on 127.0.0.1:
a standby reporter holds updates (the latest per status line), `activate` sends the recent
ones after reading the commit's statuses, and nothing the forge already shows is posted again."""

from __future__ import annotations

import dataclasses

import pytest

from receiver.config import StatusLimits
from receiver.status.model import CommitState, StatusUpdate
from tests.integration.status.test_status_reporter import NAME, NOW, Harness
from tests.support.forges import EmulatedGitHub, EmulatedGitLab

SHA = "c3" * 20


def update(
    forge: EmulatedGitHub | EmulatedGitLab, state: CommitState, **extra: object
) -> StatusUpdate:
    project = "acme/app" if isinstance(forge, EmulatedGitHub) else "group/sub/app"
    fields = {
        "forge_host": forge.host,
        "project": project,
        "sha": SHA,
        "name": NAME,
        "state": state,
        "description": f"{state.value} description",
        **extra,
    }
    return StatusUpdate(**fields)  # type: ignore[arg-type]


@pytest.fixture(params=["github", "gitlab"])
def forge(
    request: pytest.FixtureRequest, github_api: EmulatedGitHub, gitlab_api: EmulatedGitLab
) -> EmulatedGitHub | EmulatedGitLab:
    return github_api if request.param == "github" else gitlab_api


async def test_standby_holds_then_activate_sends_only_what_the_forge_lacks(
    forge: EmulatedGitHub | EmulatedGitLab,
) -> None:
    harness = Harness(forge)
    await harness.reporter.start()
    try:
        # The old leader posted pending before it died.
        harness.reporter.submit(update(forge, CommitState.PENDING))
        await harness.idle()
        assert len(forge.posted) == 1
        calls_before = len(forge.calls)

        follower = Harness(forge)
        follower.reporter.standby()
        await follower.reporter.start()
        follower.reporter.submit(update(forge, CommitState.PENDING))
        await follower.idle()
        assert len(forge.calls) == calls_before  # a follower sends nothing
        assert follower.metric("gitops_receiver_status_held") == 1

        # Takeover: pending is on the forge already (checked, not posted); then the outcome.
        assert follower.reporter.activate() == 1
        await follower.idle()
        assert [c.method for c in forge.calls[calls_before:]] == ["GET"]
        assert (
            follower.metric(
                "gitops_receiver_status_calls_total",
                forge=forge.__class__.__name__[8:].lower(),
                outcome="already_on_forge",
            )
            == 1
        )
        follower.reporter.submit(update(forge, CommitState.SUCCESS))
        await follower.idle()
        assert [p.state for p in forge.posted] == [
            "pending",
            "success",
        ]
        await follower.reporter.stop()
    finally:
        await harness.reporter.stop()


async def test_held_updates_collapse_to_the_latest_per_status_line_and_expire(
    forge: EmulatedGitHub | EmulatedGitLab,
) -> None:
    now = [NOW]
    harness = Harness(forge, limits=StatusLimits(recover_window_s=60))
    harness.reporter._clock = lambda: now[0]  # the reporter's only clock
    harness.reporter.standby()
    await harness.reporter.start()
    try:
        old = dataclasses.replace(update(forge, CommitState.SUCCESS), sha="d4" * 20)
        harness.reporter.submit(old)
        now[0] += 120  # older than the recovery window by the takeover
        harness.reporter.submit(update(forge, CommitState.PENDING))
        harness.reporter.submit(update(forge, CommitState.RUNNING))
        harness.reporter.submit(update(forge, CommitState.SUCCESS))
        assert harness.reporter.activate() == 1
        await harness.idle()
        # One read of the commit, then only the latest state of the line.
        assert [c.method for c in forge.calls] == ["GET", "POST"]
        assert [(p.sha, p.state) for p in forge.posted] == [(SHA, "success")]
    finally:
        await harness.reporter.stop()


async def test_losing_the_lease_puts_queued_updates_back_on_hold(
    forge: EmulatedGitHub | EmulatedGitLab,
) -> None:
    harness = Harness(forge)
    harness.reporter.submit(update(forge, CommitState.PENDING))  # queued, not started
    harness.reporter.standby()
    assert harness.reporter.queued == 0
    await harness.reporter.start()
    try:
        await harness.idle()
        assert forge.calls == []
        assert harness.reporter.activate() == 1
        await harness.idle()
        assert [c.method for c in forge.calls] == ["GET", "POST"]
        assert [p.state for p in forge.posted] == ["pending"]
    finally:
        await harness.reporter.stop()


async def test_a_settled_line_is_never_reopened_by_a_recovered_pending(
    forge: EmulatedGitHub | EmulatedGitLab,
) -> None:
    harness = Harness(forge)
    await harness.reporter.start()
    try:
        harness.reporter.submit(update(forge, CommitState.SUCCESS))
        await harness.idle()
        recovered = Harness(forge)
        await recovered.reporter.start()
        recovered.reporter.submit(update(forge, CommitState.PENDING, verify=True))
        await recovered.idle()
        assert [p.state for p in forge.posted] == ["success"]
        await recovered.reporter.stop()
    finally:
        await harness.reporter.stop()
