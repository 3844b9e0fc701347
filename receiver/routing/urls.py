"""Git repository URLs -> one canonical key, so a push and a GitRepository meet in a dict.

Pure: no I/O. The key is `host/path`: scheme, user-info, port and a trailing `.git` or `/`
are dropped, the host is lower-cased, and the forges' alternative spellings (Azure DevOps
`_git` and SSH `v3/` forms, Bitbucket Server `scm/` and web forms) are rewritten to one.
It must never raise on junk input: it answers None instead.
"""

from __future__ import annotations

import functools
import re
from typing import NewType
from urllib.parse import unquote, urlsplit

NormalizedUrl = NewType("NormalizedUrl", str)

# Schemes a GitRepository or a forge payload may use for a remote repository.
REMOTE_SCHEMES = frozenset({"http", "https", "ssh", "git", "git+ssh", "ssh+git"})

# Forges known to treat the repository path case-insensitively: the path is lower-cased there,
# so `github.com/Org/Repo` and `github.com/org/repo` meet. Everywhere else the path keeps its
# case (a self-hosted GitLab or Gitea path may be case-sensitive on disk).
CASE_INSENSITIVE_HOSTS = frozenset({"github.com", "gitlab.com", "bitbucket.org", "dev.azure.com"})

AZURE_HOST = "dev.azure.com"
AZURE_SSH_HOSTS = frozenset({"ssh.dev.azure.com", "vs-ssh.visualstudio.com"})
VISUALSTUDIO_SUFFIX = ".visualstudio.com"
# Bitbucket Server/Data Center's default SSH port: its SSH URLs carry no `scm/` marker.
BITBUCKET_SERVER_SSH_PORT = 7999

# `[user@]host:path`, git's scp-like syntax; the host part must not contain a slash.
_SCP_LIKE = re.compile(
    r"^(?:(?P<user>[^@/\s]+)@)?(?P<host>[A-Za-z0-9._\-]+|\[[0-9A-Fa-f:.]+\]):(?P<path>.*)$"
)
_LABEL = r"[a-z0-9_](?:[a-z0-9_\-]*[a-z0-9_])?"
_HOST = re.compile(rf"^{_LABEL}(?:\.{_LABEL})*$")
_IPV6 = re.compile(r"^[0-9a-f:.]+$")
_BAD_CHARS = re.compile(r"[\s\x00-\x1f\x7f]")
# `https:/host/x` (one slash) must not pass for scp-like `host:path` with host "https".
_NOT_HOSTS = REMOTE_SCHEMES | {"file", "ftp", "ftps", "mailto"}
# Hosted forges whose paths never use the Bitbucket Server or GitLab web spellings.
_PLAIN_HOSTS = frozenset({"github.com", "bitbucket.org"})


# A push names the same few URLs again and again: normalising is pure, so results are
# remembered (bounded) and a busy repository costs a dict lookup per URL.
_CACHE_SIZE = 65_536


@functools.lru_cache(maxsize=_CACHE_SIZE)
def normalize_git_url(url: str) -> NormalizedUrl | None:
    """The canonical `host/path` of a repository URL, or None when `url` names no repository.

    Equal keys mean "the same repository". Scheme and port are ignored on purpose: a forge
    serves one repository over HTTPS (443 or, say, 8443) and SSH (22, 2222, 7999) at once and
    a push event names both, so comparing ports would split them. The cost is that two
    different Git servers on one host but different ports would share keys, which is rare and
    only costs an extra reconcile.
    """
    text = url.strip()
    if not text or _BAD_CHARS.search(text):
        return None
    parsed = _split(text)
    if parsed is None:
        return None
    host, port, raw_path = parsed
    if not _valid_host(host):
        return None
    segments = _segments(raw_path)
    if segments is None:
        return None
    host, segments = _rewrite_forge_forms(host, port, segments)
    if not segments:
        return None
    path = "/".join(segments)
    if host in CASE_INSENSITIVE_HOSTS:
        path = path.lower()
    if ":" in host:
        host = f"[{host}]"
    return NormalizedUrl(f"{host}/{path}")


def normalize_all(urls: tuple[str, ...] | list[str]) -> tuple[NormalizedUrl, ...]:
    """The distinct keys of several URLs, junk dropped, first occurrence order kept."""
    keys = (normalize_git_url(url) for url in urls)
    return tuple(dict.fromkeys(key for key in keys if key is not None))


def _split(text: str) -> tuple[str, int | None, str] | None:
    """(lower-cased host, port or None, raw path) from a URL or git's scp-like syntax."""
    if "://" in text:
        scheme = text.split("://", 1)[0].lower()
        if scheme not in REMOTE_SCHEMES:
            return None
        try:
            parts = urlsplit(text)
            port = parts.port
        except ValueError:
            return None
        host = (parts.hostname or "").lower()
        return host, port, parts.path
    match = _SCP_LIKE.match(text)
    if match is None or match.group("host").lower() in _NOT_HOSTS:
        return None
    return match.group("host").strip("[]").lower(), None, match.group("path")


def _valid_host(host: str) -> bool:
    if not host:
        return False
    if ":" in host:  # IPv6 literal
        return _IPV6.match(host) is not None
    return _HOST.match(host) is not None


def _segments(raw_path: str) -> list[str] | None:
    """Path segments, percent-decoded, empty ones and a trailing `.git` dropped."""
    decoded = unquote(raw_path)
    if "\\" in decoded:
        return None
    segments = [segment for segment in decoded.split("/") if segment]
    if any(segment in {".", ".."} for segment in segments):
        return None
    if segments and segments[-1].endswith(".git"):
        last = segments[-1][: -len(".git")]
        segments = segments[:-1] + ([last] if last else [])
    return segments


def _rewrite_forge_forms(host: str, port: int | None, segments: list[str]) -> tuple[str, list[str]]:
    """Rewrite Azure DevOps, Bitbucket Server and GitLab web spellings to their clone path."""
    if host in AZURE_SSH_HOSTS:
        # git@ssh.dev.azure.com:v3/org/project/repo
        if len(segments) == 4 and segments[0] == "v3":
            return AZURE_HOST, segments[1:]
        return host, segments
    if host.endswith(VISUALSTUDIO_SUFFIX):
        # https://org.visualstudio.com[/DefaultCollection]/project/_git/repo
        org = host[: -len(VISUALSTUDIO_SUFFIX)]
        if segments and segments[0].lower() == "defaultcollection":
            segments = segments[1:]
        azure = _azure_git_path([org, *segments])
        return (AZURE_HOST, azure) if azure is not None else (host, segments)
    if host == AZURE_HOST:
        # https://[org@]dev.azure.com/org/project/_git/repo
        azure = _azure_git_path(segments)
        return host, azure if azure is not None else segments
    if host in _PLAIN_HOSTS:
        return host, segments
    bitbucket = _bitbucket_server_path(segments, port=port)
    if bitbucket is not None:
        return host, bitbucket
    if "-" in segments:
        # GitLab web routes: https://gitlab.example/group/repo/-/tree/main
        segments = segments[: segments.index("-")]
    return host, segments


def _azure_git_path(segments: list[str]) -> list[str] | None:
    """org/project/_git/repo -> org/project/repo; org/_git/repo (project = repo) too."""
    if "_git" not in segments:
        return None
    at = segments.index("_git")
    if at + 1 >= len(segments):
        return None
    repo = segments[at + 1]
    if at == 2:
        return [segments[0], segments[1], repo]
    if at == 1:
        return [segments[0], repo, repo]
    return None


def _bitbucket_server_path(segments: list[str], *, port: int | None) -> list[str] | None:
    """Bitbucket Server forms -> `projectkey/repo`, the key lower-cased (keys ignore case).

    `[context/]scm/PROJ/repo`, web `[context/]projects/PROJ/repos/repo[/browse...]` (and
    `users/NAME/repos/repo` -> `~name/repo`), and SSH on port 7999 `PROJ/repo`.
    """
    if len(segments) >= 3 and segments[-3] == "scm":
        return [segments[-2].lower(), segments[-1]]
    for at in range(len(segments) - 3):
        kind, key, repos, repo = segments[at : at + 4]
        if repos == "repos" and kind in {"projects", "users"}:
            owner = key.lower() if kind == "projects" else "~" + key.lower()
            return [owner, repo]
    if port == BITBUCKET_SERVER_SSH_PORT and len(segments) == 2:
        return [segments[0].lower(), segments[1]]
    return None
