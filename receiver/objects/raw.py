"""The one reader of raw objects (dicts as the API server or the inventory returns them).

Pure: no I/O. Every module that reads a watched object goes through these few functions, so a
missing or mistyped field reads the same everywhere: a non-mapping is an empty mapping, a
non-string is the empty string. Strings repeated across thousands of objects (apiVersion,
kind, namespace) are interned.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any, Final

from receiver.events import ObjectRef

# The event types a watch (and the inventory) hands to its callback.
ADDED: Final = "ADDED"
MODIFIED: Final = "MODIFIED"
DELETED: Final = "DELETED"

Key = tuple[str, str]
"""(namespace, name)"""


def mapping(value: object) -> Mapping[str, Any]:
    """`value` when it is a mapping, else an empty one: `mapping(obj.get("spec"))`."""
    return value if isinstance(value, Mapping) else {}


def text(value: object) -> str:
    """`value` when it is a string, else the empty string."""
    return value if isinstance(value, str) else ""


def object_key(obj: Mapping[str, Any]) -> Key:
    """(namespace, name) from `metadata`; empty strings where missing."""
    metadata = mapping(obj.get("metadata"))
    return (text(metadata.get("namespace")), text(metadata.get("name")))


def object_ref(
    obj: Mapping[str, Any], *, default_api_version: str = "", default_kind: str = ""
) -> ObjectRef:
    """The ObjectRef of a raw object. The defaults fill an `apiVersion` or `kind` the object
    omits (list items may); missing metadata reads as empty strings."""
    namespace, name = object_key(obj)
    return ObjectRef(
        api_version=sys.intern(text(obj.get("apiVersion")) or default_api_version),
        kind=sys.intern(text(obj.get("kind")) or default_kind),
        namespace=sys.intern(namespace),
        name=name,
    )
