"""Does a pushed ref concern a GitRepository's `spec.ref`? One answer, with its reason.

Pure: no I/O. Mirrors what source-controller would check out (fluxcd/pkg gogit `Clone`):
commit, else name, else tag, else semver, else branch, else `master`. Flux's API docs list
semver above tag, but the code tests tag first; the code decides what is fetched, so we
follow it. The reason string is shown by `gitops-receiver routes` and in skip logs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from receiver.errors import ConstraintError
from receiver.routing import semver

HEADS = "refs/heads/"
TAGS = "refs/tags/"
# With no branch, tag, semver, name or commit, source-controller clones `master`
# (fluxcd/pkg git.DefaultBranch), not the remote HEAD.
FLUX_DEFAULT_BRANCH = "master"


@dataclass(frozen=True, slots=True)
class RefSpec:
    """A GitRepository's `spec.ref`; empty strings are read as unset, as Flux does."""

    branch: str | None = None
    tag: str | None = None
    semver: str | None = None
    name: str | None = None
    commit: str | None = None

    @classmethod
    def from_spec(cls, ref: Mapping[str, object] | None) -> RefSpec:
        if not ref:
            return _EMPTY

        def text(key: str) -> str | None:
            value = ref.get(key)
            return value.strip() or None if isinstance(value, str) else None

        spec = cls(
            branch=text("branch"),
            tag=text("tag"),
            semver=text("semver"),
            name=text("name"),
            commit=text("commit"),
        )
        return _EMPTY if spec == _EMPTY else spec

    def effective(self) -> tuple[str, str] | None:
        """The field Flux acts on, as (field, value), or None when no field is set."""
        for field in ("commit", "name", "tag", "semver", "branch"):
            value = getattr(self, field)
            if value is not None:
                return field, value
        return None

    def describe(self) -> str:
        """Short text for tables: `branch main`, `semver >=1.0.0`, `default (master)`."""
        chosen = self.effective()
        return f"default ({FLUX_DEFAULT_BRANCH})" if chosen is None else f"{chosen[0]} {chosen[1]}"


_EMPTY = RefSpec()


@dataclass(frozen=True, slots=True)
class RefMatch:
    matched: bool
    reason: str


def match_ref(
    spec: RefSpec, *, pushed_ref: str, default_branch: str | None, deleted: bool
) -> RefMatch:
    """Whether a push of `pushed_ref` (full name: `refs/heads/main`) should reconcile `spec`.

    - commit: never; a pinned commit does not move when anything is pushed.
    - name: the pushed ref equals it (`refs/heads/main`, `refs/merge-requests/1/head`).
    - tag: the pushed ref is `refs/tags/<tag>`.
    - semver: the pushed ref is a tag that parses as Flux parses tags and satisfies the range.
      Deleting such a tag matches too: the range may now resolve to another tag.
    - branch: the pushed ref is `refs/heads/<branch>`.
    - nothing set: `refs/heads/master` (what Flux clones), or the default branch the event
      names (what the issue asks for, and what a user who left `ref` out most likely means).
    A deleted branch or exact tag never matches: Flux would only fail to fetch it.
    """
    chosen = spec.effective()
    if chosen is None:
        return _match_default(pushed_ref, default_branch=default_branch, deleted=deleted)
    field, value = chosen
    if field == "commit":
        return RefMatch(False, f"commit {value[:12]} is pinned; a push never moves it")
    if field == "semver":
        return _match_semver(value, pushed_ref=pushed_ref, deleted=deleted)
    wanted = {"name": value, "tag": TAGS + value, "branch": HEADS + value}[field]
    if pushed_ref != wanted:
        return RefMatch(False, f"{field} {value} does not match pushed {pushed_ref}")
    if deleted:
        return RefMatch(False, f"{pushed_ref} was deleted")
    return RefMatch(True, f"{field} {value} matches pushed {pushed_ref}")


def _match_default(pushed_ref: str, *, default_branch: str | None, deleted: bool) -> RefMatch:
    wanted = [HEADS + FLUX_DEFAULT_BRANCH]
    if default_branch:
        wanted.append(
            default_branch if default_branch.startswith("refs/") else HEADS + default_branch
        )
    if pushed_ref not in wanted:
        names = " or ".join(dict.fromkeys(wanted))
        return RefMatch(False, f"no spec.ref: follows {names}, not pushed {pushed_ref}")
    if deleted:
        return RefMatch(False, f"{pushed_ref} was deleted")
    return RefMatch(True, f"no spec.ref: default branch {pushed_ref} pushed")


def _match_semver(text: str, *, pushed_ref: str, deleted: bool) -> RefMatch:
    if not pushed_ref.startswith(TAGS):
        return RefMatch(False, f"semver {text} needs a tag; pushed {pushed_ref}")
    tag = pushed_ref[len(TAGS) :]
    constraint = semver.cached_constraint(text)
    if isinstance(constraint, ConstraintError):
        return RefMatch(False, f"semver range is invalid: {constraint}")
    version = semver.parse_tag_version(tag)
    if version is None:
        return RefMatch(False, f"tag {tag} is not a semantic version")
    if not constraint.matches(version):
        return RefMatch(False, f"tag {tag} does not satisfy semver {text}")
    if deleted:
        return RefMatch(True, f"tag {tag} in semver {text} deleted; the range may resolve anew")
    return RefMatch(True, f"tag {tag} satisfies semver {text}")
