"""Helpers shared by the Git forges' push parsers: zero SHAs, changed paths, URL lists.

Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from pydantic import BaseModel, ConfigDict

ZERO_SHA = "0" * 40


class PushedCommit(BaseModel):
    """The file lists of one pushed commit; None when the forge left a list out."""

    model_config = ConfigDict(extra="ignore")

    added: list[str] | None = None
    modified: list[str] | None = None
    removed: list[str] | None = None


def is_zero_sha(sha: str | None) -> bool:
    return sha is not None and sha.strip("0") == "" and len(sha) >= 40


def changed_paths(commits: Sequence[PushedCommit], *, complete: bool) -> frozenset[str] | None:
    """Union of added/modified/removed, or None when the list cannot be trusted.

    None when the forge truncated the commit list (`complete` False), when there is no commit
    at all (a force push to an older commit, a new tag) or when any commit lacks a file list.
    """
    if not complete or not commits:
        return None
    paths: set[str] = set()
    for commit in commits:
        if commit.added is None or commit.modified is None or commit.removed is None:
            return None
        paths.update(commit.added, commit.modified, commit.removed)
    return frozenset(paths)


def present(urls: Iterable[str | None]) -> tuple[str, ...]:
    """The non-empty URLs, first occurrence kept, order kept."""
    return tuple(dict.fromkeys(url for url in urls if url))
