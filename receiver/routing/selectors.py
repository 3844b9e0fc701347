"""Kubernetes equality-based label selectors, evaluated locally (for `routes` explanations).

Pure. Supports what `--label-selector` accepts at the watch: `k=v`, `k==v`, `k!=v`, `k`
(exists) and `!k` (absent), comma-separated (AND). Set-based forms (`in`, `notin`) raise.
"""

from __future__ import annotations

from collections.abc import Mapping

from receiver.errors import SelectorError


def matches(selector: str | None, labels: Mapping[str, str]) -> bool:
    if not selector:
        return True
    for term in (part.strip() for part in selector.split(",")):
        if not term:
            continue
        if " in " in term or " notin " in term or "(" in term:
            raise SelectorError(f"set-based selector {term!r} is not supported here")
        if "!=" in term:
            key, value = (part.strip() for part in term.split("!=", 1))
            if labels.get(key) == value:
                return False
        elif "=" in term:
            key, value = (part.strip() for part in term.replace("==", "=").split("=", 1))
            if labels.get(key) != value:
                return False
        elif term.startswith("!"):
            if term[1:].strip() in labels:
                return False
        elif term not in labels:
            return False
    return True
