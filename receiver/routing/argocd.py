"""Argo CD Applications and ApplicationSets as routing records, and whether a push refreshes one.

Pure: no I/O, no clock. Mirrors Argo CD's own webhook handlers (v3.5.7:
`util/webhook/webhook.go`, `util/webhook/registry.go`, `util/app/path/path.go`,
`applicationset/webhook/webhook.go`) so the same push refreshes the same objects:
- repository: every `spec.source`/`spec.sources[*]` (and a source hydrator's dry and sync
  sources) whose `repoURL` names the pushed repository, compared as Argo CD's URL pattern does
  (scheme, user, port, `.git`, an `ssh.`/`altssh.` host prefix and case ignored);
- revision: `targetRevision` `HEAD` or empty follows the default branch; otherwise the pushed
  branch or tag name (Argo CD does not tell them apart), a full `refs/heads/`/`refs/tags/` ref,
  or a Masterminds semver constraint the pushed name satisfies; a pinned commit SHA never moves;
- paths: `argocd.argoproj.io/manifest-generate-paths`, `;`-separated, relative to the source's
  `path` (`.` is the path itself), absolute from the repository root, Go `filepath.Match` globs;
  an unknown file list never skips (as for Flux objects);
- registry pushes: sources whose `repoURL`, or `repoURL/chart`, names the pushed artifact and
  whose `targetRevision` equals or admits the pushed tag;
- ApplicationSets: Git generators (also inside matrix and merge generators) by `repoURL` and
  `revision`; a plugin generator, or a templated `repoURL`, means every push (Argo CD refreshes
  plugin-generated sets on every push too).
The refresh itself is a JSON merge patch of one annotation, as Argo CD's handler sends it.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any, Final, TypeAlias

from receiver.errors import ConstraintError
from receiver.events import GitPush, ImagePush, ObjectRef
from receiver.objects import raw
from receiver.routing import images, semver, urls
from receiver.routing.images import NormalizedImage
from receiver.routing.index import Hit, Skip, SkipCause
from receiver.routing.refs import HEADS, TAGS, RefMatch

GROUP: Final = "argoproj.io"
VERSION: Final = "v1alpha1"
API_VERSION: Final = f"{GROUP}/{VERSION}"
APPLICATION: Final = "Application"
APPLICATION_SET: Final = "ApplicationSet"
# kind -> plural, for the API paths of refresh patches and watches.
PLURALS: Final[Mapping[str, str]] = {
    APPLICATION: "applications",
    APPLICATION_SET: "applicationsets",
}

REFRESH_ANNOTATION: Final = "argocd.argoproj.io/refresh"
APPLICATION_SET_REFRESH_ANNOTATION: Final = "argocd.argoproj.io/application-set-refresh"
PATHS_ANNOTATION: Final = "argocd.argoproj.io/manifest-generate-paths"
HYDRATE_ANNOTATION: Final = "argocd.argoproj.io/hydrate"
NORMAL_REFRESH: Final = "normal"
HARD_REFRESH: Final = "hard"

OCI_SCHEME: Final = "oci://"
HEAD: Final = "HEAD"
# A full commit id (SHA-1 or SHA-256): such a targetRevision is pinned, a push never moves it.
_COMMIT_SHA: Final = re.compile(r"^(?:[0-9a-fA-F]{40}|[0-9a-fA-F]{64})$")
# Argo CD's repository pattern accepts these host prefixes before the pushed host.
_SSH_HOST_PREFIXES: Final = ("ssh.", "altssh.")
_TEMPLATE: Final = "{{"


# --- records -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ArgoSource:
    """One source of an Application, with what routing compares.

    `repo_key` is the Git repository key (None: `repoURL` names no Git repository), `images`
    the OCI artifacts it may name (`repoURL`, and `repoURL/chart` for a Helm chart), and
    `refresh_paths` the repository-relative paths that concern it (() = every change).
    """

    repo_url: str
    repo_key: urls.NormalizedUrl | None
    images: tuple[NormalizedImage, ...]
    target_revision: str
    path: str
    chart: str
    refresh_paths: tuple[str, ...]
    dry: bool = False  # a source hydrator's dry source: a push to it also asks for hydration


@dataclass(frozen=True, slots=True)
class ApplicationRecord:
    """What routing keeps of one `Application`."""

    ref: ObjectRef
    sources: tuple[ArgoSource, ...]
    labels: tuple[tuple[str, str], ...]

    @property
    def hydrated(self) -> bool:
        """Whether Argo CD's source hydrator renders this Application."""
        return any(source.dry for source in self.sources)

    def describe_revision(self) -> str:
        revisions = dict.fromkeys(s.target_revision or HEAD for s in self.sources)
        return "targetRevision " + ", ".join(revisions) if revisions else "no source"

    def describe_paths(self) -> str:
        found = dict.fromkeys(p or "." for s in self.sources for p in s.refresh_paths)
        return ", ".join(found) if found else "*"


@dataclass(frozen=True, slots=True)
class GitGenerator:
    """A Git generator of an ApplicationSet (`repo_key` None: templated or unusable URL)."""

    repo_url: str
    repo_key: urls.NormalizedUrl | None
    revision: str


@dataclass(frozen=True, slots=True)
class ApplicationSetRecord:
    """What routing keeps of one `ApplicationSet`: its Git generators, and whether every push
    concerns it (a plugin generator or a Git generator whose `repoURL` is a template)."""

    ref: ObjectRef
    generators: tuple[GitGenerator, ...]
    every_push: bool
    labels: tuple[tuple[str, str], ...]

    def describe_revision(self) -> str:
        revisions = dict.fromkeys(g.revision or HEAD for g in self.generators)
        shown = "revision " + ", ".join(revisions) if revisions else "no git generator"
        return shown + (" + plugin/templated" if self.every_push else "")

    def describe_paths(self) -> str:
        return "*"


ArgoRecord: TypeAlias = ApplicationRecord | ApplicationSetRecord


def repo_key(url: str) -> urls.NormalizedUrl | None:
    """The key a push URL and a `repoURL` meet under: the Git key, an `ssh.`/`altssh.` host
    prefix dropped and lower-cased whole, as Argo CD's case-insensitive pattern compares."""
    key = urls.normalize_git_url(url)
    if key is None:
        return None
    host, _, path = key.partition("/")
    for prefix in _SSH_HOST_PREFIXES:
        if host.startswith(prefix) and "." in host[len(prefix) :]:
            host = host[len(prefix) :]
            break
    return urls.NormalizedUrl(f"{host}/{path}".lower())


def push_keys(repo_urls: Sequence[str]) -> tuple[urls.NormalizedUrl, ...]:
    """The distinct keys of the URLs a push names, junk dropped."""
    keys = (repo_key(url) for url in repo_urls)
    return tuple(dict.fromkeys(key for key in keys if key is not None))


def source_images(repo_url: str, chart: str) -> tuple[NormalizedImage, ...]:
    """The OCI artifacts a source may name: `oci://` or scheme-less `repoURL`s only (an
    `https://` Helm repository or a Git URL is no registry path)."""
    text = repo_url.strip()
    explicit = text.lower().startswith(OCI_SCHEME)
    if not text or (not explicit and ("://" in text or "@" in text)):
        return ()
    found: list[NormalizedImage] = []
    for candidate in (text, f"{text.rstrip('/')}/{chart}" if chart else None):
        if candidate is None:
            continue
        image = images.normalize_image(candidate)
        if image is not None and image not in found:
            found.append(image)
    return tuple(found)


def application_record(obj: Mapping[str, Any]) -> ApplicationRecord | None:
    """The record of an Application; None when it has no name or namespace.

    Sources as Argo CD's handler iterates them: `spec.sources` when non-empty (then
    `spec.source` is ignored), else `spec.source`; with `spec.sourceHydrator`, the sync source
    (its path is its only refresh path) and the dry source (with the annotation's paths).
    """
    ref = _object_ref(obj, kind=APPLICATION)
    if ref is None:
        return None
    spec = raw.mapping(obj.get("spec"))
    metadata = raw.mapping(obj.get("metadata"))
    annotation = raw.mapping(metadata.get("annotations")).get(PATHS_ANNOTATION)
    paths_value = annotation if isinstance(annotation, str) else None
    sources: list[ArgoSource] = []
    hydrator = raw.mapping(spec.get("sourceHydrator"))
    if hydrator:
        dry = raw.mapping(hydrator.get("drySource"))
        sync = raw.mapping(hydrator.get("syncSource"))
        sync_path = raw.text(sync.get("path"))
        sources.append(
            _source(
                repo_url=raw.text(sync.get("repoURL")) or raw.text(dry.get("repoURL")),
                target_revision=raw.text(sync.get("targetBranch")),
                path=sync_path,
                chart="",
                refresh_paths=_clean_all([sync_path]),
            )
        )
        sources.append(replace(_raw_source(dry, paths_value), dry=True))
    else:
        sources_value = spec.get("sources")
        items = sources_value if isinstance(sources_value, list) else []
        listed = [s for s in items if isinstance(s, Mapping)]
        if not listed and raw.mapping(spec.get("source")):
            listed = [raw.mapping(spec.get("source"))]
        sources.extend(_raw_source(source, paths_value) for source in listed)
    return ApplicationRecord(ref=ref, sources=tuple(sources), labels=_labels(metadata))


def application_set_record(obj: Mapping[str, Any]) -> ApplicationSetRecord | None:
    """The record of an ApplicationSet; None when it has no name or namespace."""
    ref = _object_ref(obj, kind=APPLICATION_SET)
    if ref is None:
        return None
    generators: list[GitGenerator] = []
    every_push = _collect_generators(
        raw.mapping(obj.get("spec")).get("generators"), found=generators, depth=0
    )
    metadata = raw.mapping(obj.get("metadata"))
    if any(g.repo_key is None and _TEMPLATE in g.repo_url for g in generators):
        every_push = True
    return ApplicationSetRecord(
        ref=ref, generators=tuple(generators), every_push=every_push, labels=_labels(metadata)
    )


def record_from_object(obj: Mapping[str, Any]) -> ArgoRecord | None:
    """The record of an Application or ApplicationSet; None for anything else."""
    kind = obj.get("kind")
    if kind == APPLICATION:
        return application_record(obj)
    if kind == APPLICATION_SET:
        return application_set_record(obj)
    return None


# Matrix and merge generators nest at most this deep in Argo CD's CRD (and in practice).
_MAX_GENERATOR_DEPTH: Final = 4


def _collect_generators(value: object, *, found: list[GitGenerator], depth: int) -> bool:
    """Append the Git generators under `value`; True when a plugin generator is among them."""
    plugin = False
    if depth > _MAX_GENERATOR_DEPTH or not isinstance(value, list):
        return plugin
    for item in value:
        generator = raw.mapping(item)
        git = raw.mapping(generator.get("git"))
        if git:
            repo_url = raw.text(git.get("repoURL"))
            key = None if _TEMPLATE in repo_url else repo_key(repo_url)
            found.append(GitGenerator(repo_url, key, raw.text(git.get("revision"))))
        if raw.mapping(generator.get("plugin")):
            plugin = True
        for nested in ("matrix", "merge"):
            children = raw.mapping(generator.get(nested)).get("generators")
            plugin |= _collect_generators(children, found=found, depth=depth + 1)
    return plugin


def _raw_source(source: Mapping[str, Any], paths_value: str | None) -> ArgoSource:
    path = raw.text(source.get("path"))
    return _source(
        repo_url=raw.text(source.get("repoURL")),
        target_revision=raw.text(source.get("targetRevision")),
        path=path,
        chart=raw.text(source.get("chart")),
        refresh_paths=refresh_paths(paths_value, source_path=path),
    )


def _source(
    *, repo_url: str, target_revision: str, path: str, chart: str, refresh_paths: tuple[str, ...]
) -> ArgoSource:
    return ArgoSource(
        repo_url=repo_url,
        repo_key=repo_key(repo_url),
        images=source_images(repo_url, chart),
        target_revision=target_revision.strip(),
        path=path,
        chart=chart,
        refresh_paths=refresh_paths,
    )


# --- revisions -----------------------------------------------------------------------------


def parse_revision(ref: str) -> str:
    """Argo CD's `ParseRevision`: what follows the second `/` (`refs/heads/a/b` -> `a/b`), or
    the last part of a shorter name (`a/b` -> `b`)."""
    return ref.split("/", 2)[-1]


def touched_head(push: GitPush) -> bool:
    """Whether the push moved the default branch; True when the event does not say which
    branch is the default (Argo CD assumes so for Bitbucket, and lets the controller check)."""
    if not push.default_branch:
        return True
    default = push.default_branch
    return push.ref == (default if default.startswith("refs/") else HEADS + default)


def compare_revisions(revision: str, target_revision: str) -> bool:
    """Argo CD's `compareRevisions`: equal, or `target_revision` is a semver constraint that
    `revision`, read as Masterminds reads versions (`v` optional, `1.2` = 1.2.0), satisfies."""
    if revision == target_revision:
        return True
    constraint = semver.cached_constraint(target_revision)
    if isinstance(constraint, ConstraintError):
        return False
    version = semver.parse_version(revision)
    return version is not None and constraint.matches(version)


def match_target_revision(target_revision: str, *, push: GitPush) -> RefMatch:
    """Whether a push moves a source's `targetRevision` (Argo CD's `sourceRevisionHasChanged`),
    with the reason `routes` shows. A deleted ref still matches, as in Argo CD: the refresh
    then reports that the revision is gone."""
    wanted = target_revision.strip()
    if _COMMIT_SHA.match(wanted):
        return RefMatch(False, f"targetRevision {wanted[:12]} is a pinned commit")
    short = parse_revision(wanted)
    if short in (HEAD, ""):
        return _match_head(f"targetRevision {wanted or HEAD}", push=push)
    revision = parse_revision(push.ref)
    compared = short if wanted.startswith((HEADS, TAGS)) else wanted
    if revision == compared:
        return RefMatch(True, f"targetRevision {wanted} matches pushed {push.ref}")
    if compare_revisions(revision, compared):
        return RefMatch(True, f"pushed {revision} satisfies targetRevision {wanted}")
    return RefMatch(False, f"targetRevision {wanted} does not match pushed {push.ref}")


def match_generator_revision(revision_spec: str, *, push: GitPush) -> RefMatch:
    """Argo CD's `genRevisionHasChanged` for a Git generator's `revision` (no semver there)."""
    wanted = revision_spec.strip()
    short = parse_revision(wanted)
    if short in (HEAD, ""):
        return _match_head(f"revision {wanted or HEAD}", push=push)
    revision = parse_revision(push.ref)
    if short == revision or wanted == revision:
        return RefMatch(True, f"revision {wanted} matches pushed {push.ref}")
    return RefMatch(False, f"revision {wanted} does not match pushed {push.ref}")


def _match_head(what: str, *, push: GitPush) -> RefMatch:
    """`HEAD` or empty: the default branch moved, or the event does not say which it is."""
    if not push.default_branch:
        return RefMatch(True, f"{what}: default branch unknown")
    if touched_head(push):
        return RefMatch(True, f"{what}: default branch pushed")
    return RefMatch(False, f"{what} follows {push.default_branch}, not {push.ref}")


# --- paths ---------------------------------------------------------------------------------


def refresh_paths(annotation: str | None, *, source_path: str) -> tuple[str, ...]:
    """The repository-relative paths of `manifest-generate-paths` for one source (Argo CD's
    `GetSourceRefreshPaths`); () means every change concerns the source. An entry naming the
    repository root turns the filter off, as it would match every file."""
    if not annotation:
        return ()
    found: list[str] = []
    for part in annotation.split(";"):
        item = part.strip()
        if not item:
            continue
        joined = item[1:] if item.startswith("/") else posixpath.join(source_path, item)
        found.append(joined)
    return _clean_all(found)


def _clean_all(items: Sequence[str]) -> tuple[str, ...]:
    cleaned: list[str] = []
    for item in items:
        path = posixpath.normpath("/" + item).lstrip("/")
        if not path:
            return ()
        cleaned.append(path)
    return tuple(dict.fromkeys(cleaned))


def files_changed(paths: tuple[str, ...], changed: frozenset[str] | None) -> bool:
    """Argo CD's `AppFilesHaveChanged` with our never-skip rule: True without paths or when the
    file list is unknown (None); else True when a changed file is one of the paths, lies under
    one, or matches one as a Go `filepath.Match` glob. A known empty list concerns no path."""
    if not paths or changed is None:
        return True
    for name in changed:
        file = "/" + name.lstrip("/")
        directory = posixpath.dirname(file)
        for path in paths:
            root = "/" + path
            if file == root or directory == root or directory.startswith(root + "/"):
                return True
            if go_glob_match(root, file):
                return True
    return False


def go_glob_match(pattern: str, name: str) -> bool:
    """Go's `filepath.Match` on `/`-separated names: `*` and `?` never match `/`, `[...]`
    classes (`^` negates), `\\` escapes; a malformed pattern matches nothing."""
    compiled = _glob_regex(pattern)
    return compiled is not None and compiled.fullmatch(name) is not None


@lru_cache(maxsize=4096)
def _glob_regex(pattern: str) -> re.Pattern[str] | None:
    out: list[str] = []
    index = 0
    while index < len(pattern):
        char = pattern[index]
        index += 1
        if char == "*":
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif char == "\\":
            if index >= len(pattern):
                return None
            out.append(re.escape(pattern[index]))
            index += 1
        elif char == "[":
            parsed = _glob_class(pattern, index)
            if parsed is None:
                return None
            text, index = parsed
            out.append(text)
        else:
            out.append(re.escape(char))
    return re.compile("".join(out))


def _glob_class(pattern: str, index: int) -> tuple[str, int] | None:
    """The regex of a `[...]` class starting after its `[`, and where it ends; None if bad."""
    negate = index < len(pattern) and pattern[index] == "^"
    if negate:
        index += 1
    ranges: list[str] = []
    while True:
        if index >= len(pattern):
            return None
        if pattern[index] == "]" and ranges:
            break
        low, index = _glob_char(pattern, index)
        if low is None:
            return None
        high = low
        if index < len(pattern) and pattern[index] == "-":
            upper, index = _glob_char(pattern, index + 1)
            if upper is None or upper < low:  # Go: a reversed range matches nothing; refused here
                return None
            high = upper
        ranges.append(re.escape(low) if low == high else f"{re.escape(low)}-{re.escape(high)}")
    return f"[{'^' if negate else ''}{''.join(ranges)}]", index + 1


def _glob_char(pattern: str, index: int) -> tuple[str | None, int]:
    if index >= len(pattern) or pattern[index] in "-]":
        return None, index
    if pattern[index] == "\\":
        index += 1
        if index >= len(pattern):
            return None, index
    return pattern[index], index + 1


# --- decisions -----------------------------------------------------------------------------


def decide_application(
    record: ApplicationRecord, push: GitPush, *, keys: tuple[urls.NormalizedUrl, ...]
) -> Hit | Skip:
    """An Application against a push to the repository with `keys`: the first source of that
    repository whose revision and paths match refreshes it; else why none did."""
    found = _first_match(record, push, keys=keys)
    if isinstance(found, list):
        return _first_miss(record.ref, found, "no source names this repository")
    return Hit(record.ref, found[1].reason)


def hydrates(
    record: ApplicationRecord, push: GitPush, *, keys: tuple[urls.NormalizedUrl, ...]
) -> bool:
    """Whether the push also asks for hydration: the first matching source is the source
    hydrator's dry source (Argo CD's handler then sets `argocd.argoproj.io/hydrate: normal`;
    a push to the hydrated branch only refreshes)."""
    found = _first_match(record, push, keys=keys)
    return not isinstance(found, list) and found[0].dry


def _first_match(
    record: ApplicationRecord, push: GitPush, *, keys: tuple[urls.NormalizedUrl, ...]
) -> tuple[ArgoSource, RefMatch] | list[Skip]:
    """The first source (in Argo CD's order) the push moves, or why each source of the
    pushed repository does not move."""
    misses: list[Skip] = []
    for source in record.sources:
        if source.repo_key is None or source.repo_key not in keys:
            continue
        match = match_target_revision(source.target_revision, push=push)
        if not match.matched:
            misses.append(Skip(record.ref, SkipCause.REF, match.reason))
            continue
        if not files_changed(source.refresh_paths, push.changed_paths):
            shown = ", ".join(source.refresh_paths)
            misses.append(Skip(record.ref, SkipCause.PATH, f"no changed path under {shown}"))
            continue
        return source, match
    return misses


def decide_application_set(
    record: ApplicationSetRecord, push: GitPush, *, keys: tuple[urls.NormalizedUrl, ...]
) -> Hit | Skip:
    """An ApplicationSet against a push: a Git generator of that repository and revision, or
    a plugin/templated generator (every push), refreshes it."""
    misses: list[Skip] = []
    for generator in record.generators:
        if generator.repo_key is None or generator.repo_key not in keys:
            continue
        match = match_generator_revision(generator.revision, push=push)
        if match.matched:
            return Hit(record.ref, f"git generator: {match.reason}")
        misses.append(Skip(record.ref, SkipCause.REF, f"git generator: {match.reason}"))
    if record.every_push:
        return Hit(record.ref, "plugin or templated generator: refreshed on every push")
    return _first_miss(record.ref, misses, "no git generator names this repository")


def decide_application_image(
    record: ApplicationRecord, push: ImagePush, *, image: NormalizedImage, tag: str | None
) -> Hit | Skip:
    """An Application against a registry push of `image:tag` (Argo CD's registry handler):
    a source naming the artifact whose `targetRevision` equals or admits the tag. A push that
    names no tag matches any source of the artifact (it may have moved any tag)."""
    misses: list[Skip] = []
    for source in record.sources:
        if image not in source.images:
            continue
        wanted = source.target_revision
        if tag is None:
            return Hit(record.ref, f"{image} pushed without a tag: any targetRevision may move")
        if compare_revisions(tag, wanted):
            return Hit(record.ref, f"tag {tag!r} matches targetRevision {wanted!r}")
        misses.append(
            Skip(record.ref, SkipCause.REF, f"tag {tag!r} does not match targetRevision {wanted!r}")
        )
    return _first_miss(record.ref, misses, f"no source names {image} ({push.repository})")


def _first_miss(ref: ObjectRef, misses: list[Skip], fallback: str) -> Skip:
    if not misses:
        return Skip(ref, SkipCause.REF, fallback)
    if len(misses) == 1:
        return misses[0]
    # Several sources of the repository: a path miss is closer than a revision miss.
    cause = SkipCause.PATH if any(m.cause is SkipCause.PATH for m in misses) else SkipCause.REF
    return Skip(ref, cause, "; ".join(dict.fromkeys(m.reason for m in misses)))


# --- the refresh ---------------------------------------------------------------------------


def refresh_patch(kind: str, *, hard: bool, hydrate: bool = False) -> dict[str, Any] | None:
    """The JSON merge patch that asks Argo CD to refresh an object of `kind`, as its webhook
    handler sends it (`argo.RefreshApp`, `refreshApplicationSet`); None for other kinds.
    `hydrate` adds `argocd.argoproj.io/hydrate: normal` for an Application."""
    if kind == APPLICATION:
        annotations = {REFRESH_ANNOTATION: HARD_REFRESH if hard else NORMAL_REFRESH}
        if hydrate:
            annotations[HYDRATE_ANNOTATION] = NORMAL_REFRESH
        return {"metadata": {"annotations": annotations}}
    if kind == APPLICATION_SET:
        return {"metadata": {"annotations": {APPLICATION_SET_REFRESH_ANNOTATION: "true"}}}
    return None


def is_argocd(ref: ObjectRef) -> bool:
    """Whether a target is an Argo CD object (refreshed, not reconciled)."""
    return ref.kind in PLURALS and ref.api_version.partition("/")[0] == GROUP


# --- raw-object helpers --------------------------------------------------------------------


def _object_ref(obj: Mapping[str, Any], *, kind: str) -> ObjectRef | None:
    """The watched `kind` named by the object's key; None without a namespace and a name."""
    namespace, name = raw.object_key(obj)
    if not namespace or not name:
        return None
    return ObjectRef(
        api_version=raw.text(obj.get("apiVersion")) or API_VERSION,
        kind=kind,
        namespace=namespace,
        name=name,
    )


def _labels(metadata: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    labels = raw.mapping(metadata.get("labels"))
    return tuple(
        sorted((k, v) for k, v in labels.items() if isinstance(k, str) and isinstance(v, str))
    )
