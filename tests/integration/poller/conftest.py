"""Fixtures for the poller's integration tests: real git remotes on loopback and a harness.

`served_root` holds bare repositories; `daemon` serves it over git://, `http_basic` and
`http_bearer` over smart HTTP behind auth. `Harness` wires a real `Poller` to an in-memory
reconcile queue and a manual clock, so tests drive `tick()` and never sleep on the interval.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from receiver.config import PollSettings
from receiver.errors import QueueFull
from receiver.events import ObjectRef
from receiver.objects.resources import GIT_REPOSITORY
from receiver.poller import refs, runner
from receiver.routing.refs import RefSpec
from tests.support import gitserver
from tests.support.ls_remote import SubprocessLsRemote

USER = "flux"
PASSWORD = "s3cret-Pa55word-do-not-leak"
TOKEN = "bearer-T0ken-do-not-leak"
BASIC_SECRET = {"username": USER.encode(), "password": PASSWORD.encode()}


_TEST_SETTINGS: dict[str, object] = {"enabled": True, "allow_insecure_http": True}


@dataclass
class Clock:
    now_s: float = 1000.0

    def __call__(self) -> float:
        return self.now_s


@dataclass
class Harness:
    """A Poller with recording collaborators; `records` and `secrets` are edited by tests."""

    records: list[refs.PollRecord] = field(default_factory=list)
    secrets: dict[tuple[str, str], Mapping[str, bytes]] = field(default_factory=dict)
    requested: list[tuple[ObjectRef, str, float]] = field(default_factory=list)
    refuse: set[str] = field(default_factory=set)  # object names the queue refuses (full)
    clock: Clock = field(default_factory=Clock)
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)
    poller: runner.Poller | None = None

    def build(self, *, ls_remote: runner.LsRemote, **settings: object) -> runner.Poller:
        self.poller = runner.Poller(
            settings=PollSettings.model_validate(
                {"enabled": True, "allow_insecure_http": True, **settings}
            ),
            list_records=lambda: list(self.records),
            read_secret=self._read_secret,
            request_reconcile=self._request,
            recently_requested=self._recently,
            ls_remote=ls_remote,
            metrics=runner.PollerMetrics(self.registry),
            random=lambda: 0.5,
            clock=self.clock,
        )
        return self.poller

    async def tick(self) -> runner.TickReport:
        assert self.poller is not None
        return await self.poller.tick()

    def metric(self, name: str, **labels: str) -> float:
        value = self.registry.get_sample_value(name, labels or None)
        return 0.0 if value is None else value

    def requested_refs(self) -> list[ObjectRef]:
        return [ref for ref, _, _ in self.requested]

    async def _read_secret(self, namespace: str, name: str) -> Mapping[str, bytes] | None:
        return self.secrets.get((namespace, name))

    def _request(self, ref: ObjectRef, *, reason: str) -> int:
        if ref.name in self.refuse:
            raise QueueFull("reconcile queue is full: retry later")
        self.requested.append((ref, reason, self.clock.now_s))
        return 1

    def _recently(self, ref: ObjectRef, within_s: float) -> bool:
        return any(r == ref and self.clock.now_s - at < within_s for r, _, at in self.requested)


def record(
    name: str,
    url: str,
    *,
    revision: str | None,
    ref: Mapping[str, str] | None = None,
    secret: str | None = None,
    namespace: str = "apps",
    annotations: Mapping[str, str] | None = None,
    suspended: bool = False,
) -> refs.PollRecord:
    return refs.PollRecord(
        ref=ObjectRef(GIT_REPOSITORY.api_version, GIT_REPOSITORY.kind, namespace, name),
        url=url,
        spec_ref=RefSpec.from_spec(ref or {"branch": "master"}),
        secret_name=secret,
        artifact_revision=revision,
        suspended=suspended,
        annotations=dict(annotations or {}),
    )


@pytest.fixture
def served_root(tmp_path: Path) -> Path:
    root = tmp_path / "served"
    root.mkdir()
    return root


@pytest.fixture
def daemon(served_root: Path) -> Iterator[gitserver.GitDaemon]:
    server = gitserver.GitDaemon(served_root)
    yield server
    server.close()


@pytest.fixture
async def http_basic(served_root: Path) -> AsyncIterator[gitserver.GitHttpServer]:
    server = gitserver.GitHttpServer(root=served_root, basic=(USER, PASSWORD))
    await server.start()
    yield server
    await server.close()


@pytest.fixture
async def http_bearer(served_root: Path) -> AsyncIterator[gitserver.GitHttpServer]:
    server = gitserver.GitHttpServer(root=served_root, bearer=TOKEN)
    await server.start()
    yield server
    await server.close()


@pytest.fixture(params=["gitpython", "subprocess"])
def ls_remote(request: pytest.FixtureRequest) -> Iterator[runner.LsRemote]:
    if request.param == "subprocess":
        yield SubprocessLsRemote()
        return
    backend = runner.GitPythonLsRemote(max_threads=4)
    yield backend
    backend.close()


@pytest.fixture
def harness() -> Harness:
    return Harness()
