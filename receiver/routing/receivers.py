"""Flux `Receiver` objects and their Secrets -> the table webhook path -> receiver.

Pure: fed with raw objects from the watches (or the dry-run inventory); no I/O, no clock.
Computes each receiver's webhook path exactly as Flux does, whether it is Ready (and why
not), and the status patch that would bring its `.status` up to date (None when nothing
changed, so the API server is not written to for nothing).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from receiver.errors import InvalidExpression
from receiver.objects import raw
from receiver.objects.raw import Key
from receiver.routing.hooks import WebhookPath, webhook_path

READY = "Ready"
REASON_SUCCEEDED = "Succeeded"
REASON_TOKEN_NOT_FOUND = "TokenNotFound"
REASON_UNSUPPORTED_TYPE = "UnsupportedType"
REASON_INVALID_CEL = "InvalidCELExpression"
TERMINAL = "Reconciliation failed terminally due to configuration error"
# Set by `flux reconcile receiver`; the controller echoes it in `status.lastHandledReconcileAt`.
RECONCILE_REQUEST_ANNOTATION = "reconcile.fluxcd.io/requestedAt"


@dataclass(frozen=True, slots=True)
class ResourceRef:
    """One `spec.resources[]` entry; `name == "*"` selects by `match_labels`; `filter` is the
    entry's CEL expression (source text)."""

    kind: str
    name: str
    namespace: str
    api_version: str | None = None
    match_labels: tuple[tuple[str, str], ...] = ()
    filter: str = ""


class Predicate(Protocol):
    """A compiled CEL expression (`expressions.Expression`), as this pure module sees it."""

    @property
    def source(self) -> str: ...

    def evaluate_bool(self, context: Any) -> bool: ...


# (source, variables=...) -> Predicate; raises InvalidExpression. Injected by the app, so this
# module stays free of the CEL library.
Compiler = Callable[..., Predicate]


@dataclass(frozen=True, slots=True)
class Filters:
    """A Receiver's compiled CEL filters: `spec.resourceFilter` and, aligned with
    `spec.resources`, each entry's `filter` (None where unset). Both must accept an object."""

    top: Predicate | None
    per_resource: tuple[Predicate | None, ...]
    variables: tuple[str, ...]


def filter_variables(type_name: str) -> tuple[str, ...]:
    """What a filter may read, as Flux declares it: `claims` only for generic-oidc."""
    return ("res", "req", "claims") if type_name == "generic-oidc" else ("res", "req")


def compile_filters(
    spec: Mapping[str, Any], *, type_name: str, resources: Sequence[ResourceRef], compile: Compiler
) -> Filters | None:
    """None when the Receiver has no filter; raises InvalidExpression naming the field."""
    top_source = str(spec.get("resourceFilter") or "")
    if not top_source and not any(ref.filter for ref in resources):
        return None
    variables = filter_variables(type_name)
    top = None
    if top_source:
        try:
            top = compile(top_source, variables=variables)
        except InvalidExpression as exc:
            raise InvalidExpression(f"invalid resourceFilter expression: {exc}") from None
    per_resource: list[Predicate | None] = []
    for index, ref in enumerate(resources):
        if not ref.filter:
            per_resource.append(None)
            continue
        try:
            per_resource.append(compile(ref.filter, variables=variables))
        except InvalidExpression as exc:
            raise InvalidExpression(
                f"invalid filter expression for resources[{index}] (kind={ref.kind!r}, "
                f"name={ref.name!r}): {exc}"
            ) from None
    return Filters(top=top, per_resource=tuple(per_resource), variables=variables)


@dataclass(frozen=True, slots=True)
class ReceiverEntry:
    namespace: str
    name: str
    generation: int
    type_name: str
    events: tuple[str, ...]
    resources: tuple[ResourceRef, ...]
    secret_name: str
    suspended: bool
    token: bytes | None
    secret_data: Mapping[str, bytes]
    path: WebhookPath | None
    ready: bool
    reason: str
    message: str
    status: Mapping[str, Any]
    requested_at: str | None = None
    filters: Filters | None = None

    @property
    def key(self) -> Key:
        return (self.namespace, self.name)


def decode_secret_data(obj: Mapping[str, Any]) -> dict[str, bytes]:
    """A Secret's `data` (base64) and `stringData` as bytes; undecodable keys are dropped."""
    decoded: dict[str, bytes] = {}
    for key, value in raw.mapping(obj.get("data")).items():
        try:
            decoded[key] = base64.b64decode(value or "", validate=True)
        except (binascii.Error, ValueError, TypeError):
            continue
    for key, value in raw.mapping(obj.get("stringData")).items():
        decoded[key] = str(value).encode()
    return decoded


def _resource_refs(spec: Mapping[str, Any], namespace: str) -> tuple[ResourceRef, ...]:
    refs = []
    for item in spec.get("resources") or []:
        if not isinstance(item, Mapping) or not item.get("kind") or not item.get("name"):
            continue
        labels = raw.mapping(item.get("matchLabels"))
        refs.append(
            ResourceRef(
                kind=str(item["kind"]),
                name=str(item["name"]),
                namespace=str(item.get("namespace") or namespace),
                api_version=item.get("apiVersion") or None,
                match_labels=tuple(sorted((str(k), str(v)) for k, v in labels.items())),
                filter=str(item.get("filter") or ""),
            )
        )
    return tuple(refs)


class ReceiverTable:
    """Receivers and the Secrets they name, kept consistent as either side changes."""

    def __init__(self, *, supported_types: frozenset[str], compile: Compiler | None = None) -> None:
        self._supported = supported_types
        self._compile = compile
        # Compiled filters per Receiver, reused while its generation stays the same.
        self._compiled: dict[Key, tuple[int, Filters | InvalidExpression | None]] = {}
        self._objects: dict[Key, Mapping[str, Any]] = {}
        self._secrets: dict[Key, dict[str, bytes]] = {}
        self._entries: dict[Key, ReceiverEntry] = {}
        self._by_path: dict[WebhookPath, Key] = {}
        self._by_secret: dict[Key, set[Key]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def lookup(self, path: str) -> ReceiverEntry | None:
        key = self._by_path.get(WebhookPath(path))
        return self._entries.get(key) if key else None

    def entry(self, key: Key) -> ReceiverEntry | None:
        return self._entries.get(key)

    def entries(self) -> list[ReceiverEntry]:
        return list(self._entries.values())

    def secret(self, key: Key) -> Mapping[str, bytes] | None:
        return self._secrets.get(key)

    def apply_receiver(self, event: str, obj: Mapping[str, Any]) -> Key:
        """Record an ADDED/MODIFIED/DELETED Receiver; returns its key."""
        key = raw.object_key(obj)
        old = self._objects.pop(key, None)
        if old is not None:
            self._by_secret.get(_secret_key(old), set()).discard(key)
        if event != raw.DELETED:
            self._objects[key] = obj
            self._by_secret.setdefault(_secret_key(obj), set()).add(key)
        self._rebuild(key)
        return key

    def apply_secret(self, event: str, obj: Mapping[str, Any]) -> list[Key]:
        """Record a Secret change; returns the keys of the receivers that name it."""
        key = raw.object_key(obj)
        if event == raw.DELETED:
            self._secrets.pop(key, None)
        else:
            self._secrets[key] = decode_secret_data(obj)
        affected = sorted(self._by_secret.get(key, ()))
        for receiver_key in affected:
            self._rebuild(receiver_key)
        return affected

    def _rebuild(self, key: Key) -> None:
        old = self._entries.pop(key, None)
        if old is not None and old.path is not None and self._by_path.get(old.path) == key:
            del self._by_path[old.path]
        obj = self._objects.get(key)
        if obj is None:
            self._compiled.pop(key, None)
            return
        entry = build_entry(
            obj,
            secrets=self._secrets,
            supported_types=self._supported,
            filters=self._filters(key, obj),
        )
        self._entries[key] = entry
        if entry.path is not None:
            self._by_path[entry.path] = key

    def _filters(self, key: Key, obj: Mapping[str, Any]) -> Filters | InvalidExpression | None:
        """The Receiver's compiled filters, compiled once per generation."""
        namespace = raw.object_key(obj)[0]
        generation = int(raw.mapping(obj.get("metadata")).get("generation") or 0)
        cached = self._compiled.get(key)
        if cached is not None and cached[0] == generation:
            return cached[1]
        spec = raw.mapping(obj.get("spec"))
        compiled: Filters | InvalidExpression | None
        try:
            if self._compile is None:
                has_filter = spec.get("resourceFilter") or any(
                    isinstance(item, Mapping) and item.get("filter")
                    for item in spec.get("resources") or []
                )
                if has_filter:
                    raise InvalidExpression("no CEL evaluator is configured")
                compiled = None
            else:
                compiled = compile_filters(
                    spec,
                    type_name=str(spec.get("type", "")),
                    resources=_resource_refs(spec, namespace),
                    compile=self._compile,
                )
        except InvalidExpression as exc:
            compiled = exc
        self._compiled[key] = (generation, compiled)
        return compiled


def _secret_key(obj: Mapping[str, Any]) -> Key:
    secret_ref = raw.mapping(raw.mapping(obj.get("spec")).get("secretRef"))
    return (raw.object_key(obj)[0], raw.text(secret_ref.get("name")))


def build_entry(
    obj: Mapping[str, Any],
    *,
    secrets: Mapping[Key, Mapping[str, bytes]],
    supported_types: frozenset[str],
    filters: Filters | InvalidExpression | None = None,
) -> ReceiverEntry:
    """The entry of one Receiver; `filters` as `ReceiverTable` compiled them (an invalid
    expression makes the Receiver not Ready, as Flux marks it terminally failed)."""
    meta = raw.mapping(obj.get("metadata"))
    spec = raw.mapping(obj.get("spec"))
    namespace, name = raw.object_key(obj)
    type_name = raw.text(spec.get("type"))
    secret_name = _secret_key(obj)[1]
    secret = secrets.get((namespace, secret_name))
    token = secret.get("token") if secret is not None else None
    path = webhook_path(token=token, name=name, namespace=namespace) if token is not None else None
    if isinstance(filters, InvalidExpression):
        ready, reason = False, REASON_INVALID_CEL
        message = f"{TERMINAL}: {filters}"
    elif type_name not in supported_types:
        ready, reason = False, REASON_UNSUPPORTED_TYPE
        message = f"receiver type {type_name!r} is not supported by gitops-receiver"
    elif secret is None:
        ready, reason = False, REASON_TOKEN_NOT_FOUND
        message = f"Secret {namespace}/{secret_name} not found"
    elif token is None:
        ready, reason = False, REASON_TOKEN_NOT_FOUND
        message = f"Secret {namespace}/{secret_name} has no 'token' key"
    else:
        ready, reason = True, REASON_SUCCEEDED
        message = f"Receiver initialized for path: {path}"
    return ReceiverEntry(
        namespace=namespace,
        name=name,
        generation=int(meta.get("generation") or 0),
        type_name=type_name,
        events=tuple(str(event) for event in spec.get("events") or ()),
        resources=_resource_refs(spec, namespace),
        secret_name=secret_name,
        suspended=bool(spec.get("suspend", False)),
        token=token,
        secret_data=secret or {},
        path=path,
        ready=ready,
        reason=reason,
        message=message,
        status=raw.mapping(obj.get("status")),
        requested_at=raw.mapping(meta.get("annotations")).get(RECONCILE_REQUEST_ANNOTATION),
        filters=filters if isinstance(filters, Filters) else None,
    )


def status_patch(entry: ReceiverEntry, *, now: str) -> dict[str, Any] | None:
    """The merge patch for `.status`, or None when the live status already says the same.

    `now` (RFC 3339) becomes the Ready condition's lastTransitionTime only when its status
    flips; otherwise the existing time is kept, as Kubernetes conditions require.
    A suspended Receiver's status is left untouched, as notification-controller leaves it.
    A `reconcile.fluxcd.io/requestedAt` annotation is echoed in `lastHandledReconcileAt`,
    which is what `flux reconcile receiver` waits for.
    """
    if entry.suspended:
        return None
    current = entry.status
    conditions = [c for c in current.get("conditions") or [] if isinstance(c, Mapping)]
    old_ready = next((c for c in conditions if c.get("type") == READY), None)
    status_text = "True" if entry.ready else "False"
    ready = {
        "type": READY,
        "status": status_text,
        "observedGeneration": entry.generation,
        "reason": entry.reason,
        "message": entry.message,
        "lastTransitionTime": (
            old_ready.get("lastTransitionTime")
            if old_ready is not None and old_ready.get("status") == status_text
            else now
        ),
    }
    handled = entry.requested_at or current.get("lastHandledReconcileAt")
    unchanged = (
        current.get("lastHandledReconcileAt") == handled
        and current.get("webhookPath") == entry.path
        and current.get("observedGeneration") == entry.generation
        and old_ready is not None
        and all(old_ready.get(field) == value for field, value in ready.items())
    )
    if unchanged:
        return None
    others = [c for c in conditions if c.get("type") != READY]
    written: dict[str, Any] = {
        "webhookPath": entry.path,
        "observedGeneration": entry.generation,
        "conditions": [*others, ready],
    }
    if handled is not None:
        written["lastHandledReconcileAt"] = handled
    return {"status": written}
