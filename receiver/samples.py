"""Sample deliveries for `gitops-receiver send`: a realistic push, signed the way each forge signs.

Pure: builds (headers, body) from the arguments; the delivery id comes in as an argument.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from urllib.parse import urlsplit

ZERO_SHA = "0" * 40


def _names(repo_url: str) -> tuple[str, str, str]:
    parts = urlsplit(repo_url if "://" in repo_url else "https://" + repo_url)
    host = parts.hostname or "example.com"
    path = parts.path.strip("/").removesuffix(".git")
    return host, path, path.rsplit("/", 1)[-1]


def push_body(
    *, kind: str, repo_url: str, ref: str, after: str, changed: list[str]
) -> dict[str, object]:
    """A push payload in the forge's own shape (GitHub's or GitLab's)."""
    host, path, name = _names(repo_url)
    commit = {"id": after, "added": [], "modified": changed, "removed": []}
    if kind == "gitlab":
        return {
            "object_kind": "tag_push" if ref.startswith("refs/tags/") else "push",
            "ref": ref,
            "before": ZERO_SHA[:-1] + "1",
            "after": after,
            "checkout_sha": after,
            "project": {
                "path_with_namespace": path,
                "git_http_url": f"https://{host}/{path}.git",
                "git_ssh_url": f"git@{host}:{path}.git",
                "web_url": f"https://{host}/{path}",
                "default_branch": "main",
            },
            "commits": [commit],
            "total_commits_count": 1,
        }
    return {
        "ref": ref,
        "before": ZERO_SHA[:-1] + "1",
        "after": after,
        "created": False,
        "deleted": False,
        "forced": False,
        "repository": {
            "name": name,
            "full_name": path,
            "clone_url": f"https://{host}/{path}.git",
            "ssh_url": f"git@{host}:{path}.git",
            "html_url": f"https://{host}/{path}",
            "default_branch": "main",
        },
        "commits": [commit],
        "head_commit": commit,
    }


def signed_delivery(
    *, kind: str, secret: str, body: bytes, event: str, delivery_id: str
) -> dict[str, str]:
    """Headers a forge of `kind` would send with `body`, signed with `secret`."""
    key = secret.encode()
    headers = {"Content-Type": "application/json"}
    if kind in ("github", "gitea"):
        digest = hmac.new(key, body, hashlib.sha256).hexdigest()
        headers |= {
            "X-GitHub-Event": event,
            "X-GitHub-Delivery": delivery_id,
            "X-Hub-Signature-256": f"sha256={digest}",
            "User-Agent": "GitHub-Hookshot/gitops-receiver-send",
        }
    elif kind == "gitlab":
        headers |= {
            "X-Gitlab-Event": event,
            "X-Gitlab-Token": secret,
            "X-Gitlab-Event-UUID": delivery_id,
        }
    elif kind == "generic-hmac":
        headers["X-Signature"] = "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()
    return headers


def encode(body: dict[str, object]) -> bytes:
    return json.dumps(body, separators=(",", ":")).encode()
