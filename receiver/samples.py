"""Sample deliveries for `gitops-receiver send`: a realistic push, signed the way each forge signs.

Pure: builds (headers, body) from the arguments; the delivery id comes in as an argument.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from urllib.parse import urlsplit

ZERO_SHA = "0" * 40


def _urls(repo_url: str) -> tuple[str, str, str, str]:
    """(clone URL exactly as given, web URL, SSH URL, owner/name) for a repository URL.

    The URL given is sent as the clone URL unchanged (scheme, port and all), so the service
    is asked about exactly the repository the user named.
    """
    if "://" not in repo_url and ":" in repo_url:  # scp form: git@host:owner/name.git
        host, path = repo_url.split("@", 1)[-1].split(":", 1)
        path = path.strip("/").removesuffix(".git")
        return repo_url, f"https://{host}/{path}", repo_url, path
    parts = urlsplit(repo_url if "://" in repo_url else "https://" + repo_url)
    host = parts.hostname or "example.com"
    path = parts.path.strip("/").removesuffix(".git")
    web = (
        f"{parts.scheme}://{parts.netloc}/{path}"
        if parts.scheme in ("http", "https")
        else (f"https://{host}/{path}")
    )
    return repo_url, web, f"git@{host}:{path}.git", path


def push_body(
    *, kind: str, repo_url: str, ref: str, after: str, changed: list[str]
) -> dict[str, object]:
    """A push payload in the forge's own shape (GitHub's or GitLab's)."""
    clone_url, web_url, ssh_url, path = _urls(repo_url)
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
                "git_http_url": clone_url,
                "git_ssh_url": ssh_url,
                "web_url": web_url,
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
            "name": path.rsplit("/", 1)[-1],
            "full_name": path,
            "clone_url": clone_url,
            "ssh_url": ssh_url,
            "html_url": web_url,
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
