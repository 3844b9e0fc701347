"""The delivery inspector end to end: real deliveries through the real App against the real API
server, then the health port's JSON API, the page in headless Chromium, the CLI and the Events.

The sequence: a valid push (one object reconciled, one skipped by ref), a push with a bad
signature, a push of a ref nothing follows (every object skipped by ref), a push whose changed
files miss a path filter (skipped by path), and a Receiver naming a GitRepository that was
deleted (the API server answers the patch 404). Repository names and refs are hostile where a
sender controls them.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from selenium.webdriver.common.by import By

from receiver.app import App
from tests import envtest
from tests.support import browser
from tests.support.running import eventually, kube, running_app

TOKEN = "inspector-shared-secret"
SOURCE_V1 = "source.toolkit.fluxcd.io/v1"
GITREPOS = f"/apis/{SOURCE_V1}/namespaces/{{ns}}/gitrepositories"
RECEIVERS = "/apis/notification.toolkit.fluxcd.io/v1/namespaces/{ns}/receivers"
REPLICA = "gitops-receiver-7f9c4-x2lqp"
COMMIT = "3b18e512dba79e4c8300dd08aeb37f8e728b8dad"
# What the CLI printed, kept beside the screenshots (build/ is ignored by git) for the README.
README_CLI_OUTPUT = browser.SCREENSHOTS / "inspector-e2e-cli.txt"


@pytest.fixture
async def app(kube_server: envtest.KubeTestServer, namespace: str) -> AsyncIterator[App]:
    secret = base64.b64encode(TOKEN.encode()).decode()
    await kube(
        kube_server,
        "POST",
        f"/api/v1/namespaces/{namespace}/secrets",
        body={"metadata": {"name": "forge-secret"}, "data": {"token": secret}},
    )
    ref = {"secret_ref": {"namespace": namespace, "name": "forge-secret"}}
    async with running_app(
        kubeconfig=kube_server.kubeconfig_path,
        discovery={"endpoints": {"github": ref}, "namespaces": [namespace]},
        inspector={"replica": REPLICA},
    ) as running:
        yield running


async def gitrepo(
    server: envtest.KubeTestServer, ns: str, name: str, repo: str, branch: str, **annotations: str
) -> None:
    await kube(
        server,
        "POST",
        GITREPOS.format(ns=ns),
        body={
            "apiVersion": SOURCE_V1,
            "kind": "GitRepository",
            "metadata": {"name": name, "annotations": annotations},
            "spec": {"url": repo, "interval": "10m", "ref": {"branch": branch}},
        },
    )


def signed(
    body: dict[str, Any], *, delivery: str, secret: str = TOKEN
) -> tuple[bytes, dict[str, str]]:
    raw = json.dumps(body).encode()
    digest = hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
    return raw, {
        "Content-Type": "application/json",
        "X-GitHub-Event": "push",
        "X-GitHub-Delivery": delivery,
        "X-Hub-Signature-256": f"sha256={digest}",
    }


def push(repo: str, ref: str, changed: list[str], *, name: str | None = None) -> dict[str, Any]:
    return {
        "ref": ref,
        "before": "0" * 39 + "1",
        "after": COMMIT,
        "repository": {
            "clone_url": f"https://github.com/{repo}.git",
            "html_url": f"https://github.com/{repo}",
            "full_name": name or repo,
            "default_branch": "main",
        },
        "commits": [{"added": [], "modified": changed, "removed": []}],
    }


async def post(app: App, path: str, raw: bytes, headers: dict[str, str]) -> int:
    url = f"http://127.0.0.1:{app.ports['webhook']}{path}"
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, data=raw, headers=headers) as r,
    ):
        return r.status


async def api(app: App, query: str = "") -> dict[str, Any]:
    url = f"http://127.0.0.1:{app.ports['health']}/api/deliveries{query}"
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        assert response.status == 200
        body: dict[str, Any] = await response.json()
        return body


def objects(delivery: dict[str, Any]) -> dict[str, tuple[str, str | None, str | None]]:
    """name -> (decision, cause, patch) of each candidate object."""
    return {o["name"]: (o["decision"], o["cause"], o["patch"]) for o in delivery["objects"]}


async def send_the_sequence(kube_server: envtest.KubeTestServer, ns: str, app: App) -> str:
    repo = f"org/{ns}"
    url = f"https://github.com/{repo}"
    await gitrepo(kube_server, ns, "fleet", url, "main")
    await gitrepo(kube_server, ns, "fleet-staging", url, "staging")
    await gitrepo(
        kube_server, ns, "fleet-prod", url, "main", **{"gitops-receiver.io/paths": "clusters/prod"}
    )
    # A Receiver whose resource was deleted: its patch gets a real 404 from the API server.
    await gitrepo(kube_server, ns, "retired", url, "main")
    await kube(kube_server, "DELETE", f"{GITREPOS.format(ns=ns)}/retired")
    await kube(
        kube_server,
        "POST",
        RECEIVERS.format(ns=ns),
        body={
            "apiVersion": "notification.toolkit.fluxcd.io/v1",
            "kind": "Receiver",
            "metadata": {"name": "legacy"},
            "spec": {
                "type": "github",
                "events": ["push"],
                "secretRef": {"name": "forge-secret"},
                "resources": [{"kind": "GitRepository", "name": "retired"}],
            },
        },
    )
    hook = "/hook/" + hashlib.sha256(f"{TOKEN}legacy{ns}".encode()).hexdigest()
    await eventually(
        lambda: asyncio.sleep(0, app.receivers.lookup(hook)), check=lambda entry: entry is not None
    )
    await eventually(
        lambda: asyncio.sleep(0, len(app.discovery.git.records_for([url]))), check=lambda n: n == 3
    )

    valid = push(repo, "refs/heads/main", ["clusters/prod/app.yaml"])
    assert await post(app, "/webhooks/github", *signed(valid, delivery="d-valid")) == 200
    raw, headers = signed(valid, delivery="d-forged", secret="not-the-secret")
    assert await post(app, "/webhooks/github", raw, headers) == 401
    hostile_ref = "refs/heads/<script>alert(1)</script>"
    by_ref = push(
        repo, hostile_ref, ["clusters/prod/app.yaml"], name=f"{repo}<img src=x onerror=alert(2)>"
    )
    assert await post(app, "/webhooks/github", *signed(by_ref, delivery="d-ref")) == 200
    by_path = push(repo, "refs/heads/main", ["docs/readme.md"])
    assert await post(app, "/webhooks/github", *signed(by_path, delivery="d-path")) == 200
    assert await post(app, hook, *signed(valid, delivery="d-receiver")) == 200
    await app.queue.settle()
    assert app.events is not None
    await app.events.settle()
    return url


async def test_json_api_tells_what_became_of_each_delivery(
    kube_server: envtest.KubeTestServer, namespace: str, app: App
) -> None:
    url = await send_the_sequence(kube_server, namespace, app)
    listing = await api(app)
    assert listing["replica"] == REPLICA
    assert listing["capacity"] == 1000
    deliveries = listing["deliveries"]
    assert [d["delivery_id"] for d in deliveries] == [
        "d-receiver",
        "d-path",
        "d-ref",
        None,
        "d-valid",
    ]
    receiver, by_path, by_ref, forged, valid = deliveries
    repository = f"github.com/org/{namespace}"

    assert valid["endpoint"] == "/webhooks/github"
    assert (valid["source"], valid["event"], valid["verification"]) == (
        "github",
        "push",
        "verified",
    )
    assert (valid["http_status"], valid["outcome"], valid["failed"]) == (200, "accepted", False)
    assert (valid["ref"], valid["commit"]) == ("refs/heads/main", COMMIT)
    assert valid["repository"] == repository
    assert objects(valid) == {
        "fleet": ("reconcile", None, "patched"),
        "fleet-prod": ("reconcile", None, "patched"),
        "fleet-staging": ("skip", "ref", None),
    }
    assert all(o["attempts"] == 1 for o in valid["objects"] if o["decision"] == "reconcile")
    assert valid["latency_ms"] > 0

    assert (forged["http_status"], forged["outcome"], forged["verification"]) == (
        401,
        "unauthorized",
        "failed",
    )
    assert forged["failed"] is True and forged["objects"] == []
    assert "X-Hub-Signature-256" in forged["message"]

    assert by_ref["ref"] == "refs/heads/<script>alert(1)</script>"
    assert by_ref["outcome"] == "unrouted"
    assert {name: o[:2] for name, o in objects(by_ref).items()} == {
        "fleet": ("skip", "ref"),
        "fleet-prod": ("skip", "ref"),
        "fleet-staging": ("skip", "ref"),
    }

    assert objects(by_path) == {
        "fleet": ("reconcile", None, "patched"),
        "fleet-prod": ("skip", "path", None),
        "fleet-staging": ("skip", "ref", None),
    }

    assert receiver["endpoint"] == f"receiver {namespace}/legacy"
    assert "hook" not in json.dumps(receiver)  # the secret webhook path is never recorded
    (retired,) = receiver["objects"]
    assert (retired["name"], retired["decision"], retired["patch"]) == (
        "retired",
        "reconcile",
        "not_found",
    )
    assert "404" in retired["error"]
    assert receiver["http_status"] == 200 and receiver["failed"] is True

    failed = await api(app, "?failed=1")
    assert [d["delivery_id"] for d in failed["deliveries"]] == ["d-receiver", None]
    assert (await api(app, "?outcome=unrouted"))["matched"] == 1
    assert (await api(app, f"?repo={namespace}"))["matched"] == 4  # the forged one names none
    assert (await api(app, "?source=gitlab"))["matched"] == 0
    assert not any(TOKEN in json.dumps(d) for d in deliveries)

    # Read-only, on the health port only: the webhook port has no such routes.
    webhook = f"http://127.0.0.1:{app.ports['webhook']}"
    health = f"http://127.0.0.1:{app.ports['health']}"
    async with aiohttp.ClientSession() as session:
        for path in ("/deliveries", "/api/deliveries", "/api/deliveries/1"):
            async with session.get(webhook + path) as response:
                assert response.status == 404, path
        async with session.post(health + "/api/deliveries", data=b"{}") as response:
            assert response.status == 405
        async with session.get(health + "/api/deliveries?limit=x") as response:
            assert response.status == 400
            assert await response.json() == {"error": "limit must be a whole number"}
        async with session.get(health + "/api/deliveries/99") as response:
            assert response.status == 404
            assert (await response.json())["replica"] == REPLICA
        async with session.get(health + "/deliveries") as response:
            assert response.headers["Content-Security-Policy"].startswith("default-src 'none'")
            assert response.headers["Cache-Control"] == "no-store"
    assert (await api(app, "?limit=2"))["deliveries"][0]["delivery_id"] == "d-receiver"
    assert len((await api(app, "?limit=2"))["deliveries"]) == 2

    # Each landed patch is a ReconcileRequested Event naming the delivery's commit.
    events = await kube(
        kube_server,
        "GET",
        f"/api/v1/namespaces/{namespace}/events?fieldSelector=involvedObject.name%3Dfleet-prod",
    )
    (event,) = events["items"]
    assert event["reason"] == "ReconcileRequested"
    assert f"repository {repository}" in event["message"]
    assert f"commit {COMMIT}" in event["message"] and "ref refs/heads/main" in event["message"]
    assert event["reportingInstance"] == REPLICA
    assert url


async def deliveries_command(*args: str) -> str:
    """`gitops-receiver deliveries ARGS` as a user runs it (a process of its own); its stdout."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "receiver.cli",
        "deliveries",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 0, err.decode()
    return out.decode()


def look_at_the_page(health: str) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    with browser.chromium() as session:
        session.get(f"{health}/deliveries")
        seen["text"] = session.find_element(By.TAG_NAME, "body").text
        seen["scripts"] = len(session.find_elements(By.TAG_NAME, "script"))
        seen["images"] = len(session.find_elements(By.TAG_NAME, "img"))
        seen["png"] = browser.screenshot(session, "inspector-e2e-list")
        session.find_element(By.LINK_TEXT, "#1").click()
        seen["detail"] = session.find_element(By.TAG_NAME, "body").text
        seen["detail_png"] = browser.screenshot(session, "inspector-e2e-detail")
    return seen


async def test_page_and_cli_show_the_same_deliveries(
    kube_server: envtest.KubeTestServer,
    namespace: str,
    app: App,
) -> None:
    await send_the_sequence(kube_server, namespace, app)
    health = f"http://127.0.0.1:{app.ports['health']}"
    seen = await asyncio.to_thread(look_at_the_page, health)
    assert f"replica {REPLICA}" in seen["text"]
    assert "refs/heads/<script>alert(1)</script>" in seen["text"]
    assert seen["scripts"] == 0 and seen["images"] == 0
    assert "unauthorized 401" in seen["text"]
    assert "0/1 patched, 1 failed" in seen["text"]
    assert "fleet-staging skip ref" in seen["detail"]
    assert seen["png"].stat().st_size > 10_000

    out = await deliveries_command("--url", health)
    lines = out.splitlines()
    assert lines[0].startswith(f"replica:    {REPLICA} ")
    assert [line.split()[0] for line in lines[4:]] == ["5", "4", "3", "2", "1"]
    failed = (
        await deliveries_command("--url", health, "--failed", "--repo", namespace)
    ).splitlines()
    assert [line.split()[0] for line in failed[4:]] == ["5"]
    assert "0/1 patched, 1 failed" in failed[4]
    (README_CLI_OUTPUT).write_text(out)


def flux_cli() -> Path | None:
    """The flux CLI scripts/build-flux.sh builds into the cache, if it was built."""
    root = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "gitops-receiver"
    found = sorted((root / "flux").glob("v*/flux"), reverse=True)
    return next((path for path in found if os.access(path, os.X_OK)), None)


async def test_flux_events_shows_why_the_object_reconciled(
    kube_server: envtest.KubeTestServer, namespace: str, app: App
) -> None:
    flux = flux_cli()
    if flux is None:
        pytest.skip("flux CLI not built in the cache (scripts/build-flux.sh)")
    repo = f"org/{namespace}"
    await gitrepo(kube_server, namespace, "fleet", f"https://github.com/{repo}", "main")
    await eventually(lambda: asyncio.sleep(0, len(app.discovery.git)), check=lambda n: n >= 1)
    valid = push(repo, "refs/heads/main", ["apps/web.yaml"])
    assert await post(app, "/webhooks/github", *signed(valid, delivery="d-flux")) == 200
    await app.queue.settle()
    assert app.events is not None
    await app.events.settle()
    process = await asyncio.create_subprocess_exec(
        str(flux),
        "events",
        "--for",
        "GitRepository/fleet",
        "-n",
        namespace,
        "--kubeconfig",
        str(kube_server.kubeconfig_path),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), timeout=60)
    text = output.decode()
    assert process.returncode == 0, text
    (line,) = [line for line in text.splitlines() if "ReconcileRequested" in line]
    assert "Normal" in line and "GitRepository/fleet" in line
    assert f"repository github.com/{repo}, ref refs/heads/main, commit {COMMIT}" in line
    assert "delivery d-flux" in line
