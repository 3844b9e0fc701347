"""The poller against real git remotes on loopback: git daemon and smart HTTP behind auth.

Each test drives `Poller.tick()` by hand and checks what the reconcile queue received, what
the remote was asked (the HTTP front records every request) and the Prometheus series.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from receiver.config import PollSettings
from receiver.poller import runner
from tests.integration.poller.conftest import BASIC_SECRET, TOKEN, Harness, record
from tests.support import gitserver
from tests.support.ls_remote import SubprocessLsRemote


async def test_push_without_webhook_is_reconciled_on_next_tick(
    served_root: Path,
    daemon: gitserver.GitDaemon,
    harness: Harness,
    ls_remote: runner.LsRemote,
) -> None:
    repo = gitserver.BareRepo(served_root, "app")
    first = repo.sha("refs/heads/master")
    harness.records = [record("app", daemon.url("app"), revision=f"master@sha1:{first}")]
    harness.build(ls_remote=ls_remote)

    quiet = await harness.tick()
    assert quiet.requested == () and quiet.outcomes == {"ok": 1}
    assert harness.requested == []

    repo.advance("master")
    report = await harness.tick()

    assert report.requested == (harness.records[0].ref,)
    assert [(ref, reason) for ref, reason, _ in harness.requested] == [
        (harness.records[0].ref, "poll")
    ]
    assert harness.metric("gitops_receiver_poll_reconciles_total") == 1
    assert harness.metric("gitops_receiver_polls_total", outcome="ok") == 2
    assert harness.metric("gitops_receiver_poll_remotes") == 1


async def test_unchanged_remote_requests_nothing_and_is_listed_once_per_credential(
    served_root: Path,
    http_basic: gitserver.GitHttpServer,
    harness: Harness,
) -> None:
    repo = gitserver.BareRepo(served_root, "shared")
    dev = repo.advance("dev")
    master = repo.sha("refs/heads/master")
    url = http_basic.url("shared")
    harness.secrets[("apps", "git-auth")] = BASIC_SECRET
    harness.records = [
        record("a", url, revision=f"master@sha1:{master}", secret="git-auth"),
        record(
            "b", url + "/", revision=f"dev@sha1:{dev}", ref={"branch": "dev"}, secret="git-auth"
        ),
        record(
            "c",
            url,
            revision=f"sha1:{master}",
            ref={"name": "refs/heads/master"},
            secret="git-auth",
        ),
    ]
    harness.build(ls_remote=runner.GitPythonLsRemote(max_threads=2))

    report = await harness.tick()

    assert report.requested == ()
    assert report.remotes_polled == 1
    assert http_basic.ref_advertisements() == 1
    assert all(call.authorized for call in http_basic.calls)
    assert harness.metric("gitops_receiver_poll_remotes") == 1
    assert harness.metric("gitops_receiver_poll_reconciles_total") == 0


async def test_opted_out_suspended_and_pinned_objects_are_not_polled(
    served_root: Path,
    http_basic: gitserver.GitHttpServer,
    harness: Harness,
) -> None:
    repo = gitserver.BareRepo(served_root, "quiet")
    stale = "0" * 40
    url = http_basic.url("quiet")
    harness.secrets[("apps", "git-auth")] = BASIC_SECRET
    harness.records = [
        record(
            "off",
            url,
            revision=f"master@sha1:{stale}",
            secret="git-auth",
            annotations={"gitops-receiver.io/poll": "false"},
        ),
        record(
            "suspended", url, revision=f"master@sha1:{stale}", secret="git-auth", suspended=True
        ),
        record(
            "pinned",
            url,
            revision=f"master@sha1:{stale}",
            secret="git-auth",
            ref={"branch": "master", "commit": repo.sha("refs/heads/master")},
        ),
    ]
    harness.build(ls_remote=SubprocessLsRemote())

    report = await harness.tick()

    assert report.remotes_polled == 0
    assert http_basic.calls == []
    assert harness.requested == []


async def test_new_tag_in_semver_range_triggers_and_out_of_range_does_not(
    served_root: Path,
    daemon: gitserver.GitDaemon,
    harness: Harness,
    ls_remote: runner.LsRemote,
) -> None:
    repo = gitserver.BareRepo(served_root, "released")
    v1 = repo.sha("refs/heads/master")
    repo.tag("v1.0.0", target=v1)
    harness.records = [
        record(
            "released",
            daemon.url("released"),
            revision=f"v1.0.0@sha1:{v1}",
            ref={"semver": ">=1.0.0 <2.0.0"},
        ),
    ]
    harness.build(ls_remote=ls_remote)

    repo.tag("v2.0.0", target=repo.advance("master"))
    out_of_range = await harness.tick()
    assert out_of_range.requested == () and out_of_range.outcomes == {"ok": 1}

    v11 = repo.advance("master")
    tag_object = repo.tag("v1.1.0", target=v11)
    assert tag_object != v11  # annotated: the poller must compare the peeled commit
    in_range = await harness.tick()

    assert in_range.requested == (harness.records[0].ref,)
    assert harness.metric("gitops_receiver_poll_reconciles_total") == 1


async def test_annotated_tag_already_fetched_is_not_reported_as_moved(
    served_root: Path,
    daemon: gitserver.GitDaemon,
    harness: Harness,
) -> None:
    repo = gitserver.BareRepo(served_root, "tagged")
    commit = repo.sha("refs/heads/master")
    repo.tag("v3.0.0", target=commit)
    harness.records = [
        record(
            "tagged", daemon.url("tagged"), revision=f"v3.0.0@sha1:{commit}", ref={"tag": "v3.0.0"}
        )
    ]
    harness.build(ls_remote=SubprocessLsRemote())

    report = await harness.tick()

    assert report.outcomes == {"ok": 1} and report.requested == ()


async def test_wrong_password_backs_off_and_other_objects_are_polled_in_the_same_tick(
    served_root: Path,
    daemon: gitserver.GitDaemon,
    http_basic: gitserver.GitHttpServer,
    harness: Harness,
    ls_remote: runner.LsRemote,
) -> None:
    locked = gitserver.BareRepo(served_root, "locked")
    public = gitserver.BareRepo(served_root, "public")
    old_public = public.sha("refs/heads/master")
    harness.secrets[("apps", "wrong")] = {**BASIC_SECRET, "password": b"nope"}
    harness.records = [
        record(
            "locked", http_basic.url("locked"), revision=f"master@sha1:{'1' * 40}", secret="wrong"
        ),
        record("public", daemon.url("public"), revision=f"master@sha1:{old_public}"),
    ]
    harness.build(ls_remote=ls_remote, backoff_initial_s=60.0, backoff_max_s=600.0)
    public.advance("master")

    first = await harness.tick()

    assert first.outcomes == {"auth_failed": 1, "ok": 1}
    assert first.requested == (harness.records[1].ref,)
    assert first.failed == (harness.records[0].ref,)
    assert harness.metric("gitops_receiver_polls_total", outcome="auth_failed") == 1
    refused = len(http_basic.calls)
    assert refused >= 1 and not any(call.authorized for call in http_basic.calls)
    assert locked.sha("refs/heads/master")  # the remote exists: only the password is wrong

    # Backing off: random() is 0.5, so the first delay is 60 s * 0.75 = 45 s.
    harness.clock.now_s += 44
    waiting = await harness.tick()
    assert waiting.remotes_backing_off == 1 and waiting.remotes_polled == 1
    assert len(http_basic.calls) == refused

    harness.clock.now_s += 2
    retried = await harness.tick()
    assert retried.outcomes == {"auth_failed": 1, "ok": 1}
    assert len(http_basic.calls) > refused

    # Second failure doubles the delay: 90 s.
    harness.clock.now_s += 89
    assert (await harness.tick()).remotes_backing_off == 1
    harness.secrets[("apps", "wrong")] = BASIC_SECRET
    harness.clock.now_s += 2
    healed = await harness.tick()
    assert healed.outcomes == {"ok": 2} and healed.remotes_backing_off == 0
    assert harness.requested_refs().count(harness.records[0].ref) == 1


async def test_a_success_resets_the_backoff(
    served_root: Path,
    http_basic: gitserver.GitHttpServer,
    harness: Harness,
    ls_remote: runner.LsRemote,
) -> None:
    """fail -> fail -> succeed -> fail: the next retry comes after the base delay again."""
    gitserver.BareRepo(served_root, "flaky")
    wrong = {**BASIC_SECRET, "password": b"nope"}
    harness.secrets[("apps", "flaky")] = wrong
    harness.records = [
        record("flaky", http_basic.url("flaky"), revision=f"master@sha1:{'1' * 40}", secret="flaky")
    ]
    harness.build(ls_remote=ls_remote, backoff_initial_s=60.0, backoff_max_s=600.0)
    assert (await harness.tick()).outcomes == {"auth_failed": 1}
    harness.clock.now_s += 46  # first delay: 60 s * 0.75
    assert (await harness.tick()).outcomes == {"auth_failed": 1}
    harness.secrets[("apps", "flaky")] = BASIC_SECRET
    harness.clock.now_s += 91  # second delay: 90 s
    assert (await harness.tick()).outcomes == {"ok": 1}

    harness.secrets[("apps", "flaky")] = wrong
    harness.clock.now_s += 1
    assert (await harness.tick()).outcomes == {"auth_failed": 1}
    harness.clock.now_s += 46  # the base delay again, not a third doubling
    retried = await harness.tick()
    assert retried.outcomes == {"auth_failed": 1} and retried.remotes_backing_off == 0


async def test_bearer_token_over_http_backend(
    served_root: Path,
    http_bearer: gitserver.GitHttpServer,
    harness: Harness,
    ls_remote: runner.LsRemote,
) -> None:
    repo = gitserver.BareRepo(served_root, "tokened")
    old = repo.sha("refs/heads/master")
    harness.secrets[("apps", "token")] = {"bearerToken": TOKEN.encode()}
    harness.secrets[("apps", "bad-token")] = {"bearerToken": b"guess"}
    url = http_bearer.url("tokened")
    harness.records = [
        record("good", url, revision=f"master@sha1:{old}", secret="token"),
        record("bad", url, revision=f"master@sha1:{old}", secret="bad-token"),
    ]
    harness.build(ls_remote=ls_remote)
    repo.advance("master")

    report = await harness.tick()

    assert report.outcomes == {"ok": 1, "auth_failed": 1}
    assert report.requested == (harness.records[0].ref,)
    assert http_bearer.ref_advertisements() == 1


async def test_credentials_over_plain_http_are_refused_by_default(
    served_root: Path,
    http_basic: gitserver.GitHttpServer,
    harness: Harness,
) -> None:
    gitserver.BareRepo(served_root, "plain")
    harness.secrets[("apps", "git-auth")] = BASIC_SECRET
    harness.records = [record("plain", http_basic.url("plain"), revision=None, secret="git-auth")]
    harness.build(ls_remote=SubprocessLsRemote(), allow_insecure_http=False)

    report = await harness.tick()

    assert report.outcomes == {"bad_credentials": 1}
    assert http_basic.calls == []


@pytest.fixture
def silent_listener() -> Iterator[tuple[int, list[str]]]:
    """A TCP port on loopback that accepts connections and never answers."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    server.settimeout(0.2)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            accepted.append(conn)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield int(server.getsockname()[1]), []
    stop.set()
    thread.join(timeout=5)
    for conn in accepted:
        conn.close()
    server.close()


async def test_a_hanging_remote_times_out_without_holding_back_the_others(
    served_root: Path,
    daemon: gitserver.GitDaemon,
    harness: Harness,
    ls_remote: runner.LsRemote,
    silent_listener: tuple[int, list[str]],
) -> None:
    port, _ = silent_listener
    repo = gitserver.BareRepo(served_root, "alive")
    old = repo.sha("refs/heads/master")
    harness.records = [
        record("hung", f"git://127.0.0.1:{port}/hung.git", revision="master@sha1:" + "2" * 40),
        record("alive", daemon.url("alive"), revision=f"master@sha1:{old}"),
    ]
    harness.build(ls_remote=ls_remote, timeout_s=1.0, concurrency=2)
    repo.advance("master")

    report = await harness.tick()

    assert report.outcomes == {"timeout": 1, "ok": 1}
    assert report.requested == (harness.records[1].ref,)
    assert harness.metric("gitops_receiver_polls_total", outcome="timeout") == 1
    assert harness.metric("gitops_receiver_poll_duration_seconds_count") == 2


async def test_recent_request_suppresses_a_repeat_until_the_interval_has_passed(
    served_root: Path,
    daemon: gitserver.GitDaemon,
    harness: Harness,
) -> None:
    repo = gitserver.BareRepo(served_root, "slow")
    old = repo.sha("refs/heads/master")
    harness.records = [record("slow", daemon.url("slow"), revision=f"master@sha1:{old}")]
    harness.build(ls_remote=SubprocessLsRemote(), interval_s=60.0)
    repo.advance("master")

    assert len((await harness.tick()).requested) == 1
    harness.clock.now_s += 30  # Flux has not fetched yet: the artifact still differs
    assert (await harness.tick()).requested == ()
    harness.clock.now_s += 31
    assert len((await harness.tick()).requested) == 1
    assert harness.metric("gitops_receiver_poll_reconciles_total") == 2


async def test_a_refused_request_is_logged_and_the_tick_goes_on(
    served_root: Path,
    daemon: gitserver.GitDaemon,
    harness: Harness,
) -> None:
    refused_repo = gitserver.BareRepo(served_root, "full")
    accepted_repo = gitserver.BareRepo(served_root, "room")
    harness.records = [
        record("full", daemon.url("full"), revision=f"master@sha1:{'3' * 40}"),
        record("room", daemon.url("room"), revision=f"master@sha1:{'4' * 40}"),
    ]
    harness.build(ls_remote=SubprocessLsRemote())
    harness.refuse = {"full"}
    report = await harness.tick()

    assert refused_repo.sha("refs/heads/master") and accepted_repo.sha("refs/heads/master")
    assert harness.requested_refs() == [harness.records[1].ref]
    assert report.requested == (harness.records[1].ref,)
    assert harness.metric("gitops_receiver_poll_reconciles_total") == 1


async def test_run_is_a_no_op_when_disabled_and_sleeps_a_jittered_interval_when_enabled(
    served_root: Path,
    daemon: gitserver.GitDaemon,
) -> None:
    gitserver.BareRepo(served_root, "loop")
    ticks: list[int] = []
    delays: list[float] = []
    draws = iter([0.0, 1.0, 0.5])

    async def sleep(delay_s: float) -> None:
        delays.append(delay_s)
        if len(delays) == 3:
            raise asyncio.CancelledError

    def make(enabled: bool) -> runner.Poller:
        return runner.Poller(
            settings=PollSettings(enabled=enabled, interval_s=100.0, jitter_fraction=0.2),
            list_records=lambda: (
                ticks.append(1) or [record("loop", daemon.url("loop"), revision=None)]
            ),
            read_secret=_no_secret,
            request_reconcile=lambda ref, *, reason: None,
            recently_requested=lambda ref, within_s: False,
            ls_remote=SubprocessLsRemote(),
            metrics=runner.PollerMetrics(CollectorRegistry()),
            random=lambda: next(draws),
            sleep=sleep,
        )

    await make(False).run()
    assert ticks == [] and delays == []

    with pytest.raises(asyncio.CancelledError):
        await make(True).run()
    assert len(ticks) == 3
    assert delays == pytest.approx([80.0, 120.0, 100.0])


async def _no_secret(namespace: str, name: str) -> None:
    return None
