"""Published payloads (tests/fixtures/corpus) through both paths against the real API server.

Every GitHub example is signed as GitHub signs it (`X-Hub-Signature-256` and `X-Hub-Signature`)
and sent twice, as `application/json` and as `application/x-www-form-urlencoded`; every GitLab
example carries its documented `X-Gitlab-Event` and the token. Each decision is checked: pings
and non-push events are ignored with a 2xx, pushes reconcile exactly the objects that follow the
pushed ref, deletions reconcile nothing, and incomplete file lists (a new ref, a truncated
commit list, commits without file lists) never skip an object on its paths.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
import pytest

from receiver.app import App
from tests import envtest
from tests.support.running import eventually, kube, running_app

CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "corpus"
TOKEN = "corpus-shared-secret"
REQUESTED_AT = "reconcile.fluxcd.io/requestedAt"
SOURCE = "/apis/source.toolkit.fluxcd.io/v1/namespaces/{ns}/gitrepositories"
RECEIVERS = "/apis/notification.toolkit.fluxcd.io/v1/namespaces/{ns}/receivers"
CONTENT_TYPES = ("application/json", "application/x-www-form-urlencoded")

# name -> (spec.url, spec.ref, gitops-receiver.io/paths)
OBJECTS: dict[str, tuple[str, dict[str, str], str | None]] = {
    "gh-master": ("https://github.com/Codertocat/Hello-World.git", {"branch": "master"}, None),
    "gh-master-prod": (
        "ssh://git@github.com/Codertocat/Hello-World.git",
        {"branch": "master"},
        "clusters/prod",
    ),
    "gh-tag": ("https://github.com/codertocat/hello-world", {"tag": "simple-tag"}, None),
    "gh-dev": ("https://github.com/Codertocat/Hello-World", {"branch": "dev"}, None),
    "gl-master": ("http://example.com/mike/diaspora.git", {"branch": "master"}, None),
    "gl-master-prod": (
        "ssh://git@example.com/mike/diaspora.git",
        {"branch": "master"},
        "clusters/prod",
    ),
    "gl-master-app": ("http://example.com/mike/diaspora", {"branch": "master"}, "app"),
    "gl-tag": ("ssh://git@example.com/jsmith/example.git", {"tag": "v1.0.0"}, None),
    "gl-semver": ("http://example.com/jsmith/example", {"semver": ">=1.0.0 <2.0.0"}, None),
    "gl-other": ("http://example.com/jsmith/other", {"branch": "master"}, None),
    "rcv-target": ("https://example.org/receiver/target", {"branch": "main"}, None),
}
# The X-Gitlab-Event header GitLab's documentation gives with each example (system_*: System Hook).
GITLAB_EVENTS = {
    "push": "Push Hook",
    "tag_push": "Tag Push Hook",
    "deployment": "Deployment Hook",
    "feature_flag": "Feature Flag Hook",
    "member_add": "Member Hook",
    "project_create": "Project Hook",
    "subgroup_create": "Subgroup Hook",
}


def github_corpus() -> list[Path]:
    return sorted((CORPUS / "github").glob("*.json"))


def gitlab_corpus() -> list[Path]:
    return sorted((CORPUS / "gitlab").glob("*.json"))


def expected_targets(forge: str, payload: dict[str, Any]) -> set[str] | None:
    """Independent of the code under test: the objects a payload must reconcile, or None when
    it is not a push (ignored). Written from the payloads' own fields."""
    if forge == "github":
        if "pusher" not in payload:
            return None
        if payload["deleted"]:
            return set()
        if payload["ref"] == "refs/tags/simple-tag":
            return {"gh-tag"}
        assert payload["ref"] == "refs/heads/master" and payload["created"]
        return {"gh-master", "gh-master-prod"}  # a new ref: the file list has no base
    kind = payload.get("object_kind") or payload.get("event_name")
    if kind == "push":
        # Truncated (total_commits_count 4, 2 listed) or commits without file lists.
        return {"gl-master", "gl-master-prod", "gl-master-app"}
    if kind == "tag_push":
        return {"gl-tag", "gl-semver"}
    return None


def github_delivery(
    payload_text: str, *, event: str, content_type: str, n: int
) -> tuple[bytes, dict[str, str]]:
    document = json.dumps(json.loads(payload_text), separators=(",", ":"))
    body = (
        document.encode()
        if content_type == "application/json"
        else urlencode({"payload": document}).encode()
    )
    key = TOKEN.encode()
    return body, {
        "Content-Type": content_type,
        "User-Agent": "GitHub-Hookshot/044aadd",
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": f"72d3162e-cc78-11e3-81ab-{n:012d}",
        "X-GitHub-Hook-ID": "292430182",
        "X-Hub-Signature": "sha1=" + hmac.new(key, body, hashlib.sha1).hexdigest(),
        "X-Hub-Signature-256": "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest(),
    }


def gitlab_delivery(path: Path, *, n: int) -> tuple[bytes, dict[str, str]]:
    stem = path.stem
    event = "System Hook" if stem.startswith("system_") else GITLAB_EVENTS[stem]
    return path.read_bytes(), {
        "Content-Type": "application/json",
        "User-Agent": "GitLab/18.6.0",
        "X-Gitlab-Event": event,
        "X-Gitlab-Token": TOKEN,
        "X-Gitlab-Instance": "http://example.com",
        "X-Gitlab-Event-UUID": f"13792a34-cac6-4fda-95a8-{n:012d}",
    }


@pytest.fixture
async def app(kube_server: envtest.KubeTestServer, namespace: str) -> AsyncIterator[App]:
    await kube(
        kube_server,
        "POST",
        f"/api/v1/namespaces/{namespace}/secrets",
        body={
            "metadata": {"name": "forge-secret"},
            "data": {"token": base64.b64encode(TOKEN.encode()).decode()},
        },
    )
    for name, (url, ref, paths) in OBJECTS.items():
        metadata: dict[str, Any] = {"name": name}
        if paths is not None:
            metadata["annotations"] = {"gitops-receiver.io/paths": paths}
        await kube(
            kube_server,
            "POST",
            SOURCE.format(ns=namespace),
            body={
                "apiVersion": "source.toolkit.fluxcd.io/v1",
                "kind": "GitRepository",
                "metadata": metadata,
                "spec": {"url": url, "ref": ref, "interval": "10m"},
            },
        )
    for name, type_name, events in (
        ("github", "github", ["push"]),
        ("gitlab", "gitlab", ["Push Hook", "Tag Push Hook"]),
    ):
        await kube(
            kube_server,
            "POST",
            RECEIVERS.format(ns=namespace),
            body={
                "apiVersion": "notification.toolkit.fluxcd.io/v1",
                "kind": "Receiver",
                "metadata": {"name": name},
                "spec": {
                    "type": type_name,
                    "events": events,
                    "secretRef": {"name": "forge-secret"},
                    "resources": [{"kind": "GitRepository", "name": "rcv-target"}],
                },
            },
        )
    ref = {"secret_ref": {"namespace": namespace, "name": "forge-secret"}}
    async with running_app(
        kubeconfig=kube_server.kubeconfig_path,
        discovery={"endpoints": {"github": ref, "gitlab": ref}, "namespaces": [namespace]},
        trigger={"min_interval_s": 0},
    ) as running:
        await eventually(
            lambda: _count(running), check=lambda count: count == len(OBJECTS), timeout_s=30
        )
        yield running


async def _count(app: App) -> int:
    return len(app.discovery.git)


async def stamps(server: envtest.KubeTestServer, ns: str) -> dict[str, str]:
    listing = await kube(server, "GET", SOURCE.format(ns=ns))
    return {
        item["metadata"]["name"]: (item["metadata"].get("annotations") or {}).get(REQUESTED_AT, "")
        for item in listing["items"]
    }


async def post(app: App, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, Any]:
    url = f"http://127.0.0.1:{app.ports['webhook']}{path}"
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, data=body, headers=headers) as response,
    ):
        return response.status, await response.json(content_type=None)


def deliveries() -> list[tuple[str, str, dict[str, Any], bytes, dict[str, str]]]:
    """(forge, label, payload, body, headers) for every corpus payload and content type."""
    out = []
    n = 0
    for path in github_corpus():
        text = path.read_text()
        for content_type in CONTENT_TYPES:
            n += 1
            body, headers = github_delivery(
                text, event=path.name.split(".")[0], content_type=content_type, n=n
            )
            label = f"github/{path.name} {content_type}"
            out.append(("github", label, json.loads(text), body, headers))
    for path in gitlab_corpus():
        n += 1
        body, headers = gitlab_delivery(path, n=n)
        out.append(("gitlab", f"gitlab/{path.name}", json.loads(body), body, headers))
    return out


def test_corpus_has_at_least_60_published_payloads() -> None:
    assert len(github_corpus()) + len(gitlab_corpus()) >= 60
    pushes = [p for p in github_corpus() if p.name.startswith("push.")]
    assert len(pushes) == 7 and len(list((CORPUS / "github").glob("ping.*.json"))) == 4


async def test_discovery_path_decides_every_published_payload(
    app: App, kube_server: envtest.KubeTestServer, namespace: str
) -> None:
    wrong: list[str] = []
    for forge, label, payload, body, headers in deliveries():
        expected = expected_targets(forge, payload)
        before = await stamps(kube_server, namespace)
        status, answer = await post(app, f"/webhooks/{forge}", body, headers)
        if expected is None:
            if status != 200 or answer.get("status") != "ignored":
                wrong.append(f"{label}: expected ignored, got {status} {answer}")
            continue
        if (
            status != 200
            or answer.get("status") != "accepted"
            or answer.get("targets") != len(expected)
        ):
            wrong.append(f"{label}: expected {sorted(expected)}, got {status} {answer}")
            continue
        await app.queue.settle()
        after = await stamps(kube_server, namespace)
        moved = {name for name, stamp in after.items() if stamp != before.get(name)}
        if moved != expected:
            wrong.append(f"{label}: reconciled {sorted(moved)}, expected {sorted(expected)}")
    assert wrong == []


async def test_receiver_path_decides_every_published_payload(
    app: App, kube_server: envtest.KubeTestServer, namespace: str
) -> None:
    """As Flux: with `spec.events` set to the push events, every other event (and every system
    hook) is left alone with a 2xx; every push, deletions included, reconciles the resources."""
    paths = {}
    for name in ("github", "gitlab"):
        receiver = await eventually(
            lambda name=name: kube(kube_server, "GET", f"{RECEIVERS.format(ns=namespace)}/{name}"),
            check=lambda r: bool(r.get("status", {}).get("webhookPath")),
        )
        paths[name] = receiver["status"]["webhookPath"]
    wrong: list[str] = []
    accepted = 0
    for forge, label, _payload, body, headers in deliveries():
        event = headers.get("X-GitHub-Event") or headers["X-Gitlab-Event"]
        is_push = event in ("push", "Push Hook", "Tag Push Hook")
        status, answer = await post(app, paths[forge], body, headers)
        want = {"status": "accepted", "targets": 1} if is_push else None
        if want is not None and (status, answer) != (200, want):
            wrong.append(f"{label}: expected accepted, got {status} {answer}")
        if want is None and (status != 200 or answer.get("status") != "ignored"):
            wrong.append(f"{label}: expected ignored, got {status} {answer}")
        accepted += is_push
    assert wrong == []
    assert accepted == 2 * 7 + 2
    await app.queue.settle()
    assert (await stamps(kube_server, namespace))["rcv-target"]
