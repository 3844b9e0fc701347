"""A dry-run App with a few receivers of known tokens, its log lines, and raw-socket helpers.

Test code only: for tests that drive the webhook port through real sockets (limits, defects,
property-based requests) without needing the API server.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import yaml

from receiver import logs
from receiver.app import App
from receiver.routing.hooks import webhook_path
from tests.support.running import running_app

NAMESPACE = "edge"
# name -> (type, token): every token here is a secret the tests check never leaks.
RECEIVERS = {
    "github-hook": ("github", "gh-Secret-0f1e2d3c4b5a"),
    "gitlab-hook": ("gitlab", "gl-Secret-a1b2c3d4e5f6"),
    "gitea-hook": ("gitea", "gt-Secret-99aa88bb77cc"),
    "generic-hook": ("generic", "gn-Secret-5e4d3c2b1a00"),
    "generic-hmac-hook": ("generic-hmac", "gh-Secret-hmac-7a6b5c4d"),
    "bitbucket-hook": ("bitbucket", "bb-Secret-1029384756ab"),
    "quay-hook": ("quay", "qy-Secret-aabbccddeeff"),
    "harbor-hook": ("harbor", "hb-Secret-ffeeddccbbaa"),
    "azure-devops-hook": ("azure-devops", "az-Secret-0a0b0c0d0e0f"),
}
SECRETS = [token for _, token in RECEIVERS.values()]
# These receivers take only push events (`spec.events`).
EVENTS_FILTERED = frozenset({"github"})


def hook_path(name: str) -> str:
    token = RECEIVERS[name][1]
    return str(webhook_path(token=token.encode(), name=name, namespace=NAMESPACE))


def write_inventory(directory: Path) -> Path:
    objects: list[dict[str, Any]] = [
        {
            "apiVersion": "source.toolkit.fluxcd.io/v1",
            "kind": "GitRepository",
            "metadata": {"name": "fleet", "namespace": NAMESPACE},
            "spec": {"url": "https://github.com/org/fleet", "interval": "1m"},
        }
    ]
    for name, (type_name, token) in RECEIVERS.items():
        objects.append(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": f"{name}-token", "namespace": NAMESPACE},
                "stringData": {"token": token, "username": "user", "password": token},
            }
        )
        objects.append(
            {
                "apiVersion": "notification.toolkit.fluxcd.io/v1",
                "kind": "Receiver",
                "metadata": {"name": name, "namespace": NAMESPACE},
                "spec": {
                    "type": type_name,
                    "secretRef": {"name": f"{name}-token"},
                    "resources": [{"kind": "GitRepository", "name": "fleet"}],
                    **({"events": ["push"]} if type_name in EVENTS_FILTERED else {}),
                },
            }
        )
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "edge.yaml"
    path.write_text(yaml.safe_dump_all(objects))
    return directory


class LogLines:
    """Every line the service logs (our own and the standard library's), as rendered."""

    def __init__(self) -> None:
        self.stream = io.StringIO()

    @property
    def lines(self) -> list[str]:
        return self.stream.getvalue().splitlines()

    def events(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.lines]

    def named(self, event: str) -> list[dict[str, Any]]:
        return [entry for entry in self.events() if entry.get("event") == event]

    async def wait_for(self, event: str, *, count: int = 1, timeout_s: float = 10) -> None:
        for _ in range(int(timeout_s / 0.02)):
            if len(self.named(event)) >= count:
                return
            await asyncio.sleep(0.02)
        raise AssertionError(f"fewer than {count} {event!r} lines within {timeout_s}s")


@contextlib.contextmanager
def json_logs() -> Any:
    lines = LogLines()
    logs.configure(log_format="json", log_level="debug", output=lines.stream)
    try:
        yield lines
    finally:
        logs.configure(log_format="console", log_level="debug", output=sys.stdout)


@contextlib.asynccontextmanager
async def edge_app(directory: Path, **settings: Any) -> AsyncIterator[App]:
    async with running_app(
        kubeconfig=None, inventory=write_inventory(directory), **settings
    ) as app:
        yield app


async def raw_exchange(port: int, data: bytes, *, timeout_s: float = 5) -> bytes:
    """Send `data` on a fresh connection and read until the server closes it (bounded)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        await writer.drain()
        return await asyncio.wait_for(reader.read(), timeout_s)
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
