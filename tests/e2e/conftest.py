"""Secrets never leave the service (issue 17): every log line, answer and /metrics page of the
whole end-to-end run is searched for every secret the tests use.

For each e2e test, an autouse fixture renders the service's logs (ours, aiohttp's and
asyncio's) as the JSON lines production writes, records the body and headers of every answer
the tests' HTTP client reads, and the /metrics text of every App as it stops. The secrets are
every value of every Secret the tests create on the API server, plus the tests' own token and
secret constants and the webhook paths (`/hook/<digest>`) they call. At the end of each test
none of them may appear in what was recorded. (Subprocesses of the CLI tests are not tapped.)
"""

from __future__ import annotations

import base64
import io
import re
import sys
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest
from prometheus_client import generate_latest

from receiver import logs
from receiver.app import App
from tests import envtest

_MIN_SECRET = 8  # shorter values ("git", "user") are not searchable without false alarms
_HOOK = re.compile(r"/hook/([0-9a-f]{64})")


class Exposure:
    """What the run has shown the outside, and the secrets it must not contain."""

    def __init__(self) -> None:
        self.secrets: set[str] = set()
        self.texts: list[tuple[str, str]] = []  # (where, text)
        self.ports: set[int] = set()  # the Apps' webhook, health and metrics ports

    def add_secret(self, value: str) -> None:
        if len(value) >= _MIN_SECRET:
            self.secrets.add(value)

    def leaks(self) -> list[str]:
        found = []
        for where, text in self.texts:
            for secret in self.secrets:
                if secret in text:
                    found.append(f"{secret!r} in {where}: {text[:300]!r}")
        return found


_exposure = Exposure()


def _secret_values(body: Any) -> list[str]:
    if not isinstance(body, dict):
        return []
    values = [str(v) for v in (body.get("stringData") or {}).values()]
    for value in (body.get("data") or {}).values():
        try:
            values.append(base64.b64decode(str(value)).decode("utf-8"))
        except ValueError:
            continue
    return values


@pytest.fixture(autouse=True)
def no_secret_leaves_the_service(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    exposure = _exposure
    exposure.texts = []
    exposure.ports = set()
    stream = io.StringIO()
    logs.configure(log_format="json", log_level="debug", output=stream)

    original_request = envtest.KubeTestServer.request

    def request(self: envtest.KubeTestServer, method: str, path: str, **kwargs: Any) -> Any:
        if "/secrets" in path and method in ("POST", "PUT", "PATCH"):
            for value in _secret_values(kwargs.get("body")):
                exposure.add_secret(value)
        return original_request(self, method, path, **kwargs)

    monkeypatch.setattr(envtest.KubeTestServer, "request", request)

    original_read = aiohttp.ClientResponse.read

    async def read(self: aiohttp.ClientResponse) -> bytes:
        body = await original_read(self)
        if self.url.port not in exposure.ports:
            return body  # the App's own clients (API server, forges) or another server
        for digest in _HOOK.findall(self.url.path):
            exposure.add_secret(digest)
        headers = "\n".join(f"{k}: {v}" for k, v in self.headers.items())
        exposure.texts.append(
            (
                f"answer to {self.method} {self.url.path[:20]}…",
                headers + "\n" + body.decode("utf-8", "replace"),
            )
        )
        return body

    monkeypatch.setattr(aiohttp.ClientResponse, "read", read)

    original_start = App.start

    async def start(self: App) -> None:
        await original_start(self)
        exposure.ports.update(self.ports.values())

    monkeypatch.setattr(App, "start", start)

    original_stop = App.stop

    async def stop(self: App) -> None:
        exposure.texts.append(("/metrics", generate_latest(self.metrics.registry).decode()))
        await original_stop(self)

    monkeypatch.setattr(App, "stop", stop)
    try:
        yield
    finally:
        logs.configure(log_format="console", log_level="debug", output=sys.stdout)
    for module in list(sys.modules.values()):
        if getattr(module, "__name__", "").startswith("tests."):
            for name, value in vars(module).items():
                if isinstance(value, str) and re.search(r"TOKEN|SECRET", name):
                    exposure.add_secret(value)
    exposure.texts.extend(("log", line) for line in stream.getvalue().splitlines())
    leaks = exposure.leaks()
    assert not leaks, "secrets left the service:\n" + "\n".join(leaks[:20])
