"""What a commit status is, independent of any forge: states, one update, names and links.

Pure: no I/O, no clock. `journey.py` produces `StatusUpdate` values, the forge modules
(`github.py`, `gitlab.py`, `gitea.py`) turn one into a `ForgeRequest` and decipher the reply
into a `PostOutcome`, and `reporter.py` sends them. Nothing here knows a forge's vocabulary.
"""

from __future__ import annotations

import enum
import json
import string
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Final, Protocol
from urllib.parse import urlsplit

from receiver.errors import ConfigError
from receiver.events import ObjectRef

DEFAULT_PREFIX: Final = "flux"
ELLIPSIS: Final = "…"
TARGET_URL_FIELDS: Final = frozenset({"cluster", "kind", "namespace", "name", "sha"})


class CommitState(enum.StrEnum):
    """Where a commit stands for one Flux object, in our words; each forge maps it."""

    PENDING = "pending"
    RUNNING = "running"
    SUCCESS = "success"
    FAILURE = "failure"
    SUPERSEDED = "superseded"

    @property
    def is_final(self) -> bool:
        return self in _FINAL_STATES


_FINAL_STATES: Final = frozenset({CommitState.SUCCESS, CommitState.FAILURE, CommitState.SUPERSEDED})


class ForgeKind(enum.StrEnum):
    GITHUB = "github"
    GITLAB = "gitlab"
    GITEA = "gitea"


@dataclass(frozen=True, slots=True)
class ForgeTarget:
    """Where a commit's statuses go: the forge host and the project on it.

    `project` is GitHub/Gitea `owner/repo`, GitLab's `group/sub/project` path or numeric id.
    """

    host: str
    project: str


@dataclass(frozen=True, slots=True)
class StatusUpdate:
    """One commit status to post. `namespace` is the Flux object's, used to find the token."""

    forge_host: str
    project: str
    sha: str
    name: str
    state: CommitState
    description: str
    target_url: str | None = None
    ref: str | None = None
    namespace: str | None = None
    verify: bool = False
    """Ask the forge first, and post only if it does not show this already: set for updates
    decided while another replica may have posted them (before a takeover or a restart)."""

    @property
    def status_key(self) -> tuple[str, str, str, str]:
        """The forge-side identity of one status line: later posts to it replace earlier ones."""
        return (self.forge_host, self.project, self.sha, self.name)


@dataclass(frozen=True, slots=True)
class ForgeConfig:
    """One forge the service may post to. `api_base_url` has no trailing slash.

    GitHub: `https://api.github.com`, GitHub Enterprise: `https://<host>/api/v3`;
    GitLab: `https://<host>/api/v4`; Gitea/Forgejo: `https://<host>/api/v1`.
    """

    kind: ForgeKind
    host: str
    api_base_url: str


@dataclass(frozen=True, slots=True)
class ForgeRequest:
    """One HTTP call, ready to send. `url` is already percent-encoded: send it as is."""

    method: str
    url: str
    headers: Mapping[str, str]
    body: bytes

    @classmethod
    def post_json(
        cls, url: str, *, headers: Mapping[str, str], payload: Mapping[str, str]
    ) -> ForgeRequest:
        """A POST of `payload` as compact JSON, with `Content-Type` set."""
        return cls(
            method="POST",
            url=url,
            headers={**headers, "Content-Type": "application/json"},
            body=json.dumps(payload, separators=(",", ":")).encode(),
        )

    @classmethod
    def get(cls, url: str, *, headers: Mapping[str, str]) -> ForgeRequest:
        return cls(method="GET", url=url, headers=dict(headers), body=b"")


class PostOutcome(enum.StrEnum):
    CREATED = "created"
    ALREADY_SET = "already_set"


class BuildRequest(Protocol):
    def __call__(self, update: StatusUpdate, *, base_url: str, token: str) -> ForgeRequest: ...


class Decipher(Protocol):
    def __call__(
        self,
        *,
        status: int,
        headers: Mapping[str, str],
        body: bytes,
        state: CommitState,
        now_s: float,
    ) -> PostOutcome: ...


class BuildListRequest(Protocol):
    def __call__(self, *, project: str, sha: str, base_url: str, token: str) -> ForgeRequest: ...


class ReadStates(Protocol):
    def __call__(self, body: bytes) -> dict[str, str]: ...


@dataclass(frozen=True, slots=True)
class ForgeApi:
    """A forge's pure request/reply pair; one per module, like a source's `SOURCE`.

    `decipher` returns a `PostOutcome` or raises `ForgeRateLimited`, `ForgeUnavailable`
    (retry) or `ForgeRejected` (give up); `state` is the one that was posted, `now_s` epoch
    seconds for the reset headers. `build_list_request` asks for a commit's statuses, and
    `read_states` turns the 200 answer into each status name's latest forge state;
    `final_states` are the forge states that end a status line's journey.
    """

    kind: ForgeKind
    description_limit: int
    build_request: BuildRequest
    decipher: Decipher
    to_forge_state: Callable[[CommitState], str]
    build_list_request: BuildListRequest
    read_states: ReadStates
    final_states: frozenset[str]

    def already_shows(self, update: StatusUpdate, *, forge_state: str | None) -> bool:
        """Whether a status line whose latest state is `forge_state` makes `update` redundant:
        it shows the same state, or it is settled and `update` would only reopen it."""
        if forge_state is None:
            return False
        if forge_state == self.to_forge_state(update.state):
            return True
        return not update.state.is_final and forge_state in self.final_states


def read_latest_states(body: bytes, *, name_field: str, state_field: str) -> dict[str, str]:
    """A forge's JSON list of statuses as {name: latest state}: the highest `id` wins, else
    the first listed (GitHub lists newest first). Anything unreadable is skipped."""
    try:
        items = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return {}
    latest: dict[str, tuple[int, str]] = {}
    if not isinstance(items, list):
        return {}
    for position, item in enumerate(items):
        if not isinstance(item, dict):
            continue
        name, state = item.get(name_field), item.get(state_field)
        if not isinstance(name, str) or not isinstance(state, str):
            continue
        identity = item.get("id")
        rank = identity if isinstance(identity, int) else -position
        if name not in latest or rank > latest[name][0]:
            latest[name] = (rank, state)
    return {name: state for name, (_, state) in latest.items()}


@dataclass(frozen=True, slots=True)
class StatusNaming:
    """The stable status name per object and cluster, and the link a status carries.

    `target_url_template` uses `{cluster} {kind} {namespace} {name} {sha}`; None means no link.
    """

    cluster: str
    prefix: str = DEFAULT_PREFIX
    target_url_template: str | None = None

    def __post_init__(self) -> None:
        if self.target_url_template is None:
            return
        fields = {
            field for _, field, _, _ in string.Formatter().parse(self.target_url_template) if field
        }
        unknown = fields - TARGET_URL_FIELDS
        if unknown:
            raise ConfigError(
                f"status target_url template uses unknown fields {sorted(unknown)}: "
                f"allowed are {sorted(TARGET_URL_FIELDS)}"
            )

    def status_name(self, obj: ObjectRef) -> str:
        parts = (self.prefix, self.cluster, obj.kind, obj.namespace, obj.name)
        return "/".join(part for part in parts if part)

    def target_url(self, obj: ObjectRef, *, sha: str) -> str | None:
        if self.target_url_template is None:
            return None
        return self.target_url_template.format(
            cluster=self.cluster, kind=obj.kind, namespace=obj.namespace, name=obj.name, sha=sha
        )


def trim(text: str, *, limit: int) -> str:
    """Cut `text` to at most `limit` characters, marking the cut with an ellipsis."""
    if len(text) <= limit:
        return text
    return text[: max(limit - len(ELLIPSIS), 0)] + ELLIPSIS


def locate(repo_url: str) -> ForgeTarget | None:
    """The forge host and project path of a Git URL, or None when it names neither.

    Accepts `https://host/owner/repo(.git)`, `ssh://git@host[:port]/owner/repo.git` and the
    scp form `git@host:owner/repo.git`. The host is lower-cased and without port (the SSH port
    says nothing about the API's); the path keeps its case and loses `.git` and slashes.
    """
    url = repo_url.strip()
    if "://" not in url:
        userhost, sep, path = url.partition(":")
        if not sep or "/" in userhost:
            return None
        host = userhost.rpartition("@")[2]
    else:
        parts = urlsplit(url)
        host = parts.hostname or ""
        path = parts.path
    project = path.strip("/").removesuffix(".git").strip("/")
    if not host or "/" not in project:
        return None
    return ForgeTarget(host=host.lower(), project=project)


def locate_any(repo_urls: Iterable[str]) -> ForgeTarget | None:
    """The first of a push's URLs (`GitPush.repo_urls`) that names a forge host and project."""
    for url in repo_urls:
        target = locate(url)
        if target is not None:
            return target
    return None
