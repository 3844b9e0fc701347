"""Pure core of the fallback poller: what the remote has, what Flux fetched, whether they differ.

Parses `git ls-remote --symref` output, resolves a GitRepository `spec.ref` against it the way
source-controller does, reads the sha out of `status.artifact.revision` in all its historical
forms, and groups objects so that each (remote, credential) pair is listed once per tick.
Pure: no I/O, no git, no clock, no randomness.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, NewType
from urllib.parse import urlsplit, urlunsplit

from receiver.errors import ConstraintError, LsRemoteMalformed, UnsupportedUrl
from receiver.events import ObjectRef
from receiver.objects import raw, resources
from receiver.routing import semver
from receiver.routing.refs import FLUX_DEFAULT_BRANCH, HEADS, TAGS, RefSpec

# Opt-out: `gitops-receiver.io/poll: "false"` on the GitRepository.
POLL_ANNOTATION = "gitops-receiver.io/poll"

# Flux's CRD only admits these schemes (`^(http|https|ssh)://`); git:// is added for loopback use.
ALLOWED_SCHEMES = frozenset({"http", "https", "ssh", "git"})

_SHA_RE = re.compile(r"^(?:[0-9a-f]{40}|[0-9a-f]{64})$")
_PEELED_SUFFIX = "^{}"
_DEFAULT_PORTS = {"http": 80, "https": 443, "ssh": 22, "git": 9418}

# A remote as git would reach it: unlike `routing.urls.normalize_git_url` (a repository key that
# ignores scheme and port on purpose), two servers on one host at different ports stay apart.
RemoteUrl = NewType("RemoteUrl", str)


@dataclass(frozen=True, slots=True)
class RemoteRefs:
    """The refs one `git ls-remote --symref` listed.

    `shas` maps full ref names to the commit they name; for an annotated tag that is the peeled
    (`^{}`) commit, not the tag object, because that is what Flux checks out and records.
    `head_sha` is the remote HEAD's commit and `head_target` the branch HEAD points at
    (`refs/heads/main`), both None when the remote does not say.
    """

    shas: Mapping[str, str]
    head_sha: str | None = None
    head_target: str | None = None

    def tags(self) -> dict[str, str]:
        """Short tag name -> peeled commit sha."""
        prefix = "refs/tags/"
        return {
            name[len(prefix) :]: sha for name, sha in self.shas.items() if name.startswith(prefix)
        }


@dataclass(frozen=True, slots=True)
class Resolved:
    """What `spec.ref` points at on the remote: the full ref name ("" for a bare commit) and sha."""

    ref_name: str
    sha: str


@dataclass(frozen=True, slots=True)
class PollRecord:
    """What the poller needs to know about one GitRepository; built by `record_from_object`.

    `secret_name` is `spec.secretRef.name` (same namespace as the object). `artifact_revision`
    is `status.artifact.revision`, None before Flux stored a first artifact.
    """

    ref: ObjectRef
    url: str
    spec_ref: RefSpec = field(default_factory=RefSpec)
    secret_name: str | None = None
    artifact_revision: str | None = None
    suspended: bool = False
    annotations: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RemoteKey:
    """One `ls-remote` call: the normalised URL and the credential (namespace + Secret name)."""

    url: RemoteUrl
    secret_namespace: str | None
    secret_name: str | None


@dataclass(frozen=True, slots=True)
class RemoteGroup:
    """Objects that share one remote and credential; `call_url` is the URL git is given."""

    key: RemoteKey
    call_url: str
    host: str
    records: tuple[PollRecord, ...]


def record_from_object(obj: Mapping[str, Any]) -> PollRecord:
    """A `PollRecord` from a GitRepository as the API server returns it (a plain dict)."""
    metadata = raw.mapping(obj.get("metadata"))
    spec = raw.mapping(obj.get("spec"))
    status = raw.mapping(obj.get("status"))
    secret_ref = raw.mapping(spec.get("secretRef"))
    artifact = raw.mapping(status.get("artifact"))
    annotations = raw.mapping(metadata.get("annotations"))
    secret_name = secret_ref.get("name")
    revision = artifact.get("revision")
    return PollRecord(
        ref=raw.object_ref(
            obj,
            default_api_version=resources.GIT_REPOSITORY.api_version,
            default_kind=resources.GIT_REPOSITORY.kind,
        ),
        url=str(spec.get("url", "")),
        spec_ref=RefSpec.from_spec(raw.mapping(spec.get("ref"))),
        secret_name=secret_name if isinstance(secret_name, str) and secret_name else None,
        artifact_revision=revision if isinstance(revision, str) and revision else None,
        suspended=spec.get("suspend") is True,
        annotations={str(k): str(v) for k, v in annotations.items()},
    )


def wants_poll(record: PollRecord) -> bool:
    """False for suspended objects and for those annotated `gitops-receiver.io/poll: "false"`."""
    if record.suspended:
        return False
    return record.annotations.get(POLL_ANNOTATION, "").strip().lower() != "false"


def needs_remote(spec_ref: RefSpec) -> bool:
    """A pinned commit never moves: no `ls-remote` is needed to know what Flux should have."""
    return spec_ref.commit is None


def parse_ls_remote(text: str) -> RemoteRefs:
    """Parse `git ls-remote [--symref]` output.

    Lines are `<sha>\\t<refname>`; `<sha>\\t<tag>^{}` gives the commit an annotated tag peels
    to and wins over the tag object's sha; `ref: <target>\\tHEAD` (from `--symref`) names the
    branch HEAD points at. Blank lines are skipped; anything else raises `LsRemoteMalformed`.
    """
    shas: dict[str, str] = {}
    peeled: dict[str, str] = {}
    head_target: str | None = None
    for number, text_line in enumerate(text.splitlines(), start=1):
        line = text_line.strip("\r")
        if not line.strip():
            continue
        left, tab, right = line.partition("\t")
        if not tab or not right:
            raise LsRemoteMalformed(f"ls-remote line {number} has no tab-separated ref name")
        if left.startswith("ref: "):
            if right == "HEAD":
                head_target = left[len("ref: ") :].strip()
            continue
        sha = left.strip().lower()
        if not _SHA_RE.match(sha):
            raise LsRemoteMalformed(f"ls-remote line {number} does not start with an object id")
        if right.endswith(_PEELED_SUFFIX):
            peeled[right[: -len(_PEELED_SUFFIX)]] = sha
        else:
            shas[right] = sha
    shas.update(peeled)
    head_sha = shas.pop("HEAD", None)
    if head_sha is None and head_target is not None:
        head_sha = shas.get(head_target)
    return RemoteRefs(shas=shas, head_sha=head_sha, head_target=head_target)


def resolve(spec_ref: RefSpec, remote: RemoteRefs) -> Resolved | None:
    """The ref and commit Flux would check out for `spec_ref`, or None when the remote lacks it.

    The field that counts is `RefSpec.effective()` (source-controller's order: commit, name,
    tag, semver, branch); no field set means branch `master`, not the remote HEAD. A commit
    resolves to itself, with the branch it is combined with, if any.
    """
    chosen = spec_ref.effective()
    if chosen is None:
        return _lookup(remote, HEADS + FLUX_DEFAULT_BRANCH)
    kind, value = chosen
    if kind == "commit":
        branch = HEADS + spec_ref.branch if spec_ref.branch else ""
        return Resolved(ref_name=branch, sha=value.lower())
    if kind == "name":
        return _lookup(remote, value)
    if kind == "tag":
        return _lookup(remote, TAGS + value)
    if kind == "semver":
        tag = latest_semver_tag(value, remote.tags())
        return None if tag is None else _lookup(remote, TAGS + tag)
    return _lookup(remote, HEADS + value)


def latest_semver_tag(constraint_text: str, tags: Mapping[str, str]) -> str | None:
    """The highest tag name satisfying the range as Flux reads it; None for none or a bad range."""
    constraint = semver.cached_constraint(constraint_text)
    if isinstance(constraint, ConstraintError):
        return None
    return semver.latest_matching(constraint, tags)


def artifact_sha(revision: str | None) -> str | None:
    """The commit sha in a `status.artifact.revision`, or None when there is none to read.

    Forms: `main@sha1:<sha>`, `v1.2.0@sha1:<sha>`, `refs/pull/1/head@sha1:<sha>`, `sha1:<sha>`
    (commit only), the pre-v1 `main/<sha>`, and a plain `<sha>`. `sha256:` is accepted alike.
    """
    if not revision:
        return None
    text = revision.strip()
    _, at, digest = text.rpartition("@")
    if at:
        text = digest
    algorithm, colon, value = text.partition(":")
    if colon:
        if algorithm not in ("sha1", "sha256"):
            return None
        text = value
    else:
        text = text.rpartition("/")[2]
    sha = text.lower()
    return sha if _SHA_RE.match(sha) else None


def needs_reconcile(remote_sha: str, artifact_revision: str | None) -> bool:
    """True when the remote commit differs from the one in Flux's artifact.

    False when there is no artifact yet or its revision cannot be read: Flux is then already
    retrying on its own interval, and a poll request would only add noise to the missed-webhook
    signal.
    """
    stored = artifact_sha(artifact_revision)
    return stored is not None and stored != remote_sha.lower()


def remote_url(url: str) -> RemoteUrl:
    """Lower-case scheme and host, drop a default port, a trailing `/` and `.git`.

    Only for grouping objects that name the same remote in different spellings; git is always
    given one of the original URLs. Raises `UnsupportedUrl` outside `ALLOWED_SCHEMES` and for
    a URL carrying credentials (any HTTP(S) user-info, an SSH password).
    """
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    if scheme not in ALLOWED_SCHEMES or not parts.hostname:
        raise UnsupportedUrl(f"unsupported git URL scheme {scheme or '(none)'!r}: use https or ssh")
    if parts.password is not None or (scheme in ("http", "https") and parts.username):
        # git would carry it on its command line, readable by every local user through ps
        # (an HTTPS user name alone is often a token: `https://<token>@github.com/...`).
        raise UnsupportedUrl("git URL embeds credentials: move them to spec.secretRef")
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError as exc:
        raise UnsupportedUrl("git URL has an invalid port") from exc
    if port is not None and port != _DEFAULT_PORTS.get(scheme):
        host = f"{host}:{port}"
    if parts.username:
        host = f"{parts.username}@{host}"
    path = parts.path.rstrip("/")
    path = path.removesuffix(".git")
    return RemoteUrl(urlunsplit((scheme, host, path, parts.query, "")))


def url_host(url: str) -> str:
    """The host (and non-default port) part of a URL, for the per-host concurrency limit."""
    parts = urlsplit(url.strip())
    host = (parts.hostname or "").lower()
    try:
        port = parts.port
    except ValueError:
        port = None
    return f"{host}:{port}" if port is not None else host


def remote_key(record: PollRecord) -> RemoteKey:
    """The (remote, credential) identity of one object. Raises `UnsupportedUrl`."""
    url = remote_url(record.url)
    if record.secret_name is None:
        return RemoteKey(url=url, secret_namespace=None, secret_name=None)
    return RemoteKey(url=url, secret_namespace=record.ref.namespace, secret_name=record.secret_name)


def group_by_remote(records: Iterable[PollRecord]) -> list[RemoteGroup]:
    """Objects sharing a remote and a credential, one group each, in a stable order.

    Callers filter first (`wants_poll`, `needs_remote`, URL checks): every record given here
    must have a supported URL.
    """
    grouped: dict[RemoteKey, list[PollRecord]] = {}
    for record in sorted(records, key=lambda r: r.ref):
        grouped.setdefault(remote_key(record), []).append(record)
    return [
        RemoteGroup(
            key=key,
            call_url=members[0].url.strip(),
            host=url_host(members[0].url),
            records=tuple(members),
        )
        for key, members in sorted(grouped.items(), key=lambda item: _key_order(item[0]))
    ]


def _key_order(key: RemoteKey) -> tuple[str, str, str]:
    return (key.url, key.secret_namespace or "", key.secret_name or "")


def _lookup(remote: RemoteRefs, ref_name: str) -> Resolved | None:
    sha = remote.shas.get(ref_name)
    return None if sha is None else Resolved(ref_name=ref_name, sha=sha)
