"""`gitops-receiver routes` against the live API server and the dry-run inventory."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests import envtest
from tests.support.running import kube

ROOT = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-m", "receiver.cli", "routes"]


def routes(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], cwd=ROOT, capture_output=True, text=True, timeout=60)


def test_inventory_explains_every_object_of_the_repository() -> None:
    result = routes(
        "--inventory",
        "config/examples",
        "--repo",
        "https://github.com/example/fleet.git",
        "--ref",
        "main",
        "--changed",
        "apps/web.yaml",
        "-o",
        "json",
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["reconcile"] == ["GitRepository/flux-system/fleet"]
    causes = {row["object"]: row["cause"] for row in report["objects"]}
    assert causes == {
        "GitRepository/flux-system/fleet": "match",
        "GitRepository/flux-system/fleet-prod": "path",
        "GitRepository/flux-system/fleet-staging": "ref",
    }


def test_no_changed_files_means_path_filters_never_skip() -> None:
    result = routes(
        "--inventory",
        "config/examples",
        "--repo",
        "git@github.com:example/fleet",
        "--ref",
        "refs/heads/main",
    )
    assert result.returncode == 0
    assert "changed:    unknown (path filters never skip)" in result.stdout
    assert "reconcile:  2 of 3" in result.stdout


@pytest.mark.parametrize("incomplete", ["--new-ref", "--truncated"])
def test_incomplete_file_list_never_skips_on_paths(incomplete: str) -> None:
    """A new ref or a truncated commit list: the service cannot trust --changed, nor can routes."""
    common = ["--inventory", "config/examples", "--repo", "https://github.com/example/fleet"]
    common += ["--ref", "main", "--changed", "apps/web.yaml", "-o", "json"]
    complete = json.loads(routes(*common).stdout)
    assert complete["reconcile"] == ["GitRepository/flux-system/fleet"]
    result = routes(*common, incomplete)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["push"]["changed_paths"] is None
    assert report["reconcile"] == [
        "GitRepository/flux-system/fleet",
        "GitRepository/flux-system/fleet-prod",
    ]


def test_routes_help_says_when_to_use_the_incomplete_flags() -> None:
    text = routes("--help").stdout
    assert "--new-ref" in text and "--truncated" in text and "never skips on paths" in text


async def test_live_cluster_with_selector_and_suspended_objects(
    kube_server: envtest.KubeTestServer, namespace: str
) -> None:
    collection = f"/apis/source.toolkit.fluxcd.io/v1/namespaces/{namespace}/gitrepositories"
    url = f"https://gitlab.example.com/{namespace}/app"
    for name, labels, suspend in (
        ("kept", {"sync": "fast"}, False),
        ("unlabelled", {}, False),
        ("paused", {"sync": "fast"}, True),
    ):
        await kube(
            kube_server,
            "POST",
            collection,
            body={
                "apiVersion": "source.toolkit.fluxcd.io/v1",
                "kind": "GitRepository",
                "metadata": {"name": name, "labels": labels},
                "spec": {
                    "url": url,
                    "ref": {"branch": "main"},
                    "suspend": suspend,
                    "interval": "10m",
                },
            },
        )
    result = routes(
        "--kubeconfig",
        str(kube_server.kubeconfig_path),
        "--repo",
        url + ".git",
        "--ref",
        "main",
        "--label-selector",
        "sync=fast",
        "-o",
        "json",
    )
    assert result.returncode == 0, result.stderr
    causes = {
        row["object"].split("/")[-1]: row["cause"] for row in json.loads(result.stdout)["objects"]
    }
    assert causes == {"kept": "match", "paused": "suspended", "unlabelled": "selector"}


def test_bad_kubeconfig_is_one_line() -> None:
    result = routes("--kubeconfig", "/nonexistent", "--repo", "x", "--ref", "main")
    assert result.returncode == 2 and "cannot load kubeconfig /nonexistent" in result.stderr
    assert "Traceback" not in result.stderr
