"""Benchmark objects and payloads: GitRepositories, Flux Receivers, signed GitHub pushes.

Object i points at repository i mod `repos`; the URL form varies (https, ssh, scp-like) the way
teams write them. Probe objects (one per probe repository) time webhook -> patch without
coalescing with the load. Pure: no I/O.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import random
from dataclasses import dataclass
from typing import Any

TOKEN = "benchmark-webhook-secret"

GROUP_PATH = "/apis/source.toolkit.fluxcd.io/v1"

REQUESTED_AT = "reconcile.fluxcd.io/requestedAt"

NAMESPACES = tuple(f"bench-{k:02d}" for k in range(10))

PROBE_NS = "bench-probe"

FLUX_NS = "bench-flux"

SYSTEM_NS = "bench-system"

PROBES = 40


def repo_path(repo: int) -> str:
    return f"org-{repo % 100:02d}/repo-{repo:05d}"


def object_name(i: int) -> tuple[str, str]:
    """(namespace, name) of object i; object i points at repository i mod --repos."""
    return NAMESPACES[i % len(NAMESPACES)], f"app-{i:06d}"


def git_repository(i: int, *, repos: int) -> dict[str, Any]:
    """A GitRepository as a team would write it; the URL form varies (https, ssh, ssh with a
    port: Flux's CRD refuses the scp-like `git@host:path`)."""
    repo = repo_path(i % repos)
    url = (
        f"https://github.com/{repo}.git",
        f"ssh://git@github.com/{repo}.git",
        f"ssh://git@github.com:22/{repo}.git",
    )[i % 3]
    namespace, name = object_name(i)
    metadata: dict[str, Any] = {
        "name": name,
        "namespace": namespace,
        "labels": {"app.kubernetes.io/part-of": f"team-{i % 200:03d}", "tier": "prod"},
    }
    if i % 4 == 0:
        metadata["annotations"] = {"gitops-receiver.io/paths": "clusters/prod, apps"}
    return {
        "apiVersion": "source.toolkit.fluxcd.io/v1",
        "kind": "GitRepository",
        "metadata": metadata,
        "spec": {
            "interval": "10m",
            "url": url,
            "ref": {"branch": "main"},
            "secretRef": {"name": "git-credentials"},
        },
    }


def probe_repository(k: int) -> dict[str, Any]:
    return {
        "apiVersion": "source.toolkit.fluxcd.io/v1",
        "kind": "GitRepository",
        "metadata": {"name": f"probe-{k:02d}", "namespace": PROBE_NS},
        "spec": {
            "interval": "10m",
            "url": f"https://github.com/probe/probe-{k:02d}.git",
            "ref": {"branch": "main"},
        },
    }


def flux_receiver(name: str, members: list[tuple[str, str]]) -> dict[str, Any]:
    return {
        "apiVersion": "notification.toolkit.fluxcd.io/v1",
        "kind": "Receiver",
        "metadata": {"name": name, "namespace": FLUX_NS},
        "spec": {
            "type": "github",
            "events": ["push"],
            "secretRef": {"name": "webhook-token"},
            "resources": [
                {
                    "apiVersion": "source.toolkit.fluxcd.io/v1",
                    "kind": "GitRepository",
                    "name": member,
                    "namespace": ns,
                }
                for ns, member in members
            ],
        },
    }


def push_body(path: str, *, seq: int) -> bytes:
    """A GitHub push payload of realistic shape and size (about 3 KB)."""
    owner, name = path.split("/")
    after = hashlib.sha1(f"{path}:{seq}".encode()).hexdigest()
    before = hashlib.sha1(f"{path}:{seq - 1}".encode()).hexdigest()
    user = {"name": "dev", "email": "dev@example.com", "username": "dev"}
    commit = {
        "id": after,
        "tree_id": before,
        "distinct": True,
        "message": "apps: bump web to 1.2.3",
        "timestamp": "2026-11-25T10:00:00Z",
        "url": f"https://github.com/{path}/commit/{after}",
        "author": user,
        "committer": user,
        "added": [],
        "removed": [],
        "modified": ["apps/web/deployment.yaml"],
    }
    body = {
        "ref": "refs/heads/main",
        "before": before,
        "after": after,
        "created": False,
        "deleted": False,
        "forced": False,
        "base_ref": None,
        "compare": f"https://github.com/{path}/compare/{before[:12]}...{after[:12]}",
        "commits": [commit],
        "head_commit": commit,
        "repository": {
            "id": 100000 + seq,
            "node_id": "R_kgDOabcdef",
            "name": name,
            "full_name": path,
            "private": True,
            "owner": {"name": owner, "login": owner, "id": 4242, "type": "Organization"},
            "html_url": f"https://github.com/{path}",
            "description": "fleet configuration",
            "fork": False,
            "url": f"https://github.com/{path}",
            "git_url": f"git://github.com/{path}.git",
            "ssh_url": f"git@github.com:{path}.git",
            "clone_url": f"https://github.com/{path}.git",
            "svn_url": f"https://github.com/{path}",
            "homepage": None,
            "size": 1234,
            "default_branch": "main",
            "master_branch": "main",
            "created_at": 1700000000,
            "pushed_at": 1764064800,
            "visibility": "private",
            "topics": ["gitops", "flux"],
        },
        "pusher": {"name": "dev", "email": "dev@example.com"},
        "organization": {"login": owner, "id": 4242},
        "sender": {"login": "dev", "id": 1, "type": "User", "site_admin": False},
    }
    return json.dumps(body).encode()


def signature(body: bytes) -> str:
    return "sha256=" + hmac.new(TOKEN.encode(), body, hashlib.sha256).hexdigest()


@dataclass(frozen=True, slots=True)
class Entry:
    """One request the load generator may send: path, body, signature header."""

    path: str
    body: bytes
    sig: str


def sample_repos(objects: int, *, repos: int, sample: int) -> list[int]:
    """The repositories the load pushes to: `sample` of those that have objects (seeded)."""
    used = min(objects, repos)
    return sorted(random.Random(5).sample(range(used), min(used, sample)))


def entries_for(repos: list[int], paths: dict[int, str]) -> list[Entry]:
    """One signed push per repository, sent to that repository's webhook path."""
    entries = []
    for seq, repo in enumerate(repos):
        body = push_body(repo_path(repo), seq=seq)
        entries.append(Entry(paths[repo], body, signature(body)))
    return entries
