"""Changed-path filters: the `gitops-receiver.io/paths` annotation on a GitRepository.

Pure: no I/O. A filter names directories (or files) by whole path segments: `apps` covers
`apps` and `apps/x/y` but not `apps-legacy/x`. No annotation, an empty one, or an entry `.`
means "everything". An unknown file list (None: truncated or missing) never skips.
"""

from __future__ import annotations

import re

PATHS_ANNOTATION = "gitops-receiver.io/paths"

_SEPARATORS = re.compile(r"[,\n\r]")


def parse_paths(value: str | None) -> tuple[str, ...]:
    """The filters of an annotation value, normalised; () means no filtering at all.

    Entries are separated by commas or newlines and trimmed; `./` and `/` prefixes and `/`
    suffixes are dropped. An entry that names the root (`.`, `/`, `./`) turns filtering off.
    """
    if value is None:
        return ()
    filters: list[str] = []
    for raw in _SEPARATORS.split(value):
        entry = raw.strip()
        if not entry:
            continue
        path = normalize_path(entry)
        if not path:
            return ()
        filters.append(path)
    return tuple(dict.fromkeys(filters))


def normalize_path(path: str) -> str:
    """`./apps//x/` -> `apps/x`; the root (`.`, `/`, `./`) -> ``."""
    segments = [segment for segment in path.strip().split("/") if segment not in {"", "."}]
    return "/".join(segments)


def paths_affected(filters: tuple[str, ...], changed: frozenset[str] | None) -> bool:
    """True when the push may concern an object with these filters.

    True with no filters, and True when `changed` is None (the forge truncated the commit
    list or left file lists out): skipping then could miss a change. An empty set (a push
    that changed no file, such as an empty commit) concerns no filtered object.
    """
    if not filters or changed is None:
        return True
    return any(_under(normalize_path(path), filters) for path in changed)


def _under(path: str, filters: tuple[str, ...]) -> bool:
    return any(path == f or path.startswith(f + "/") for f in filters)


def describe(filters: tuple[str, ...]) -> str:
    """`apps, clusters/prod` for reasons and tables."""
    return ", ".join(filters)
