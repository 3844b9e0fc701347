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

from receiver.errors import InvalidExpression, ReceiverSpecInvalid
from receiver.objects import raw
from receiver.objects.raw import Key
from receiver.routing.hooks import WebhookPath, webhook_path

READY = "Ready"
REASON_SUCCEEDED = "Succeeded"
REASON_TOKEN_NOT_FOUND = "TokenNotFound"
REASON_UNSUPPORTED_TYPE = "UnsupportedType"
REASON_INVALID_CEL = "InvalidCELExpression"
REASON_VALIDATION_FAILED = "ValidationFailed"
TERMINAL_REASONS = frozenset({REASON_INVALID_CEL, REASON_VALIDATION_FAILED})
STALLED = "Stalled"
GENERIC_OIDC = "generic-oidc"
# Flux's `DefaultOIDCAudience`: the `aud` a provider expects when it names none.
DEFAULT_OIDC_AUDIENCE = "notification-controller"
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

    def evaluate(self, context: Any) -> Any: ...

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


@dataclass(frozen=True, slots=True)
class OidcVariable:
    name: str
    expression: Predicate


@dataclass(frozen=True, slots=True)
class OidcValidation:
    expression: Predicate
    message: str


@dataclass(frozen=True, slots=True)
class OidcProvider:
    """One `spec.oidcProviders[]` entry of a generic-oidc Receiver, its CEL compiled."""

    issuer_url: str
    audience: str
    variables: tuple[OidcVariable, ...]
    validations: tuple[OidcValidation, ...]


@dataclass(frozen=True, slots=True)
class Compiled:
    """What a Receiver's spec compiles to: its filters and its OIDC providers."""

    filters: Filters | None = None
    oidc_providers: tuple[OidcProvider, ...] = ()


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a Receiver's spec cannot be served (Flux marks it terminally failed)."""

    reason: str
    message: str


def filter_variables(type_name: str) -> tuple[str, ...]:
    """What a filter may read, as Flux declares it: `claims` only for generic-oidc."""
    return ("res", "req", "claims") if type_name == "generic-oidc" else ("res", "req")


def compile_spec(spec: Mapping[str, Any], *, namespace: str, compile: Compiler) -> Compiled:
    """Compile a Receiver's CEL in Flux's order; raises InvalidExpression or ReceiverSpecInvalid."""
    type_name = raw.text(spec.get("type"))
    filters = compile_filters(
        spec, type_name=type_name, resources=_resource_refs(spec, namespace), compile=compile
    )
    providers = [p for p in spec.get("oidcProviders") or [] if isinstance(p, Mapping)]
    _check_oidc_spec(spec, type_name=type_name, providers=providers)
    compiled = []
    for index, provider in enumerate(providers):
        issuer = raw.text(provider.get("issuerURL"))
        try:
            compiled.append(_compile_provider(provider, issuer=issuer, compile=compile))
        except InvalidExpression as exc:
            raise InvalidExpression(
                f"oidcProviders[{index}] (issuerURL={issuer!r}): {exc}"
            ) from None
    return Compiled(filters=filters, oidc_providers=tuple(compiled))


def _check_oidc_spec(
    spec: Mapping[str, Any], *, type_name: str, providers: Sequence[Mapping[str, Any]]
) -> None:
    """Flux's `validateOIDCSpec` and `ValidateOIDCProvidersSpec`, for API servers that did not
    enforce the CRD's rules."""
    oidc = type_name == GENERIC_OIDC
    if oidc and not providers:
        raise ReceiverSpecInvalid("generic-oidc receiver requires at least one oidcProvider")
    if not oidc and providers:
        raise ReceiverSpecInvalid("oidcProviders can only be set when type is generic-oidc")
    if oidc and spec.get("secretRef"):
        raise ReceiverSpecInvalid("secretRef cannot be set when type is generic-oidc")
    if not oidc and not spec.get("secretRef"):
        raise ReceiverSpecInvalid("secretRef is required when type is not generic-oidc")
    seen: set[str] = set()
    for i, provider in enumerate(providers):
        issuer = raw.text(provider.get("issuerURL"))
        where = f"oidcProviders[{i}] (issuerURL={issuer!r})"
        if not issuer:
            raise ReceiverSpecInvalid(f"oidcProviders[{i}]: issuerURL is required")
        if not issuer.startswith(("http://", "https://")):
            raise ReceiverSpecInvalid(
                f"oidcProviders[{i}]: issuerURL {issuer!r} must start with http:// or https://"
            )
        if issuer in seen:
            raise ReceiverSpecInvalid(f"oidcProviders[{i}]: duplicate issuerURL {issuer!r}")
        seen.add(issuer)
        if not provider.get("validations"):
            raise ReceiverSpecInvalid(
                f"{where}: at least one validation is required; without validations any "
                "caller able to obtain a token from this issuer can trigger the Receiver"
            )
        for j, variable in enumerate(provider.get("variables") or []):
            if not raw.text(raw.mapping(variable).get("name")):
                raise ReceiverSpecInvalid(f"{where}: variables[{j}]: name is required")
            if not raw.text(raw.mapping(variable).get("expression")):
                raise ReceiverSpecInvalid(f"{where}: variables[{j}]: expression is required")
        for j, validation in enumerate(provider.get("validations") or []):
            if not raw.text(raw.mapping(validation).get("expression")):
                raise ReceiverSpecInvalid(f"{where}: validations[{j}]: expression is required")
            if not raw.text(raw.mapping(validation).get("message")):
                raise ReceiverSpecInvalid(f"{where}: validations[{j}]: message is required")


def _compile_provider(
    provider: Mapping[str, Any], *, issuer: str, compile: Compiler
) -> OidcProvider:
    variables = []
    for item in provider.get("variables") or []:
        name = raw.text(raw.mapping(item).get("name"))
        source = raw.text(raw.mapping(item).get("expression"))
        try:
            variables.append(OidcVariable(name, compile(source, variables=("claims", "vars"))))
        except InvalidExpression as exc:
            raise InvalidExpression(f"invalid expression for variable {name!r}: {exc}") from None
    validations = []
    for item in provider.get("validations") or []:
        message = raw.text(raw.mapping(item).get("message"))
        source = raw.text(raw.mapping(item).get("expression"))
        try:
            expression = compile(source, variables=("claims", "vars"))
        except InvalidExpression as exc:
            raise InvalidExpression(
                f"invalid expression for validation {message!r}: {exc}"
            ) from None
        validations.append(OidcValidation(expression, message))
    return OidcProvider(
        issuer_url=issuer,
        audience=raw.text(provider.get("audience")) or DEFAULT_OIDC_AUDIENCE,
        variables=tuple(variables),
        validations=tuple(validations),
    )


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
    oidc_providers: tuple[OidcProvider, ...] = ()

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
        self._compiled: dict[Key, tuple[int, Compiled | Refusal]] = {}
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

    def receiver_keys(self) -> list[Key]:
        return list(self._entries)

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

    def naming_secret(self, key: Key) -> list[Key]:
        """The Receivers whose `spec.secretRef` names this Secret."""
        return sorted(self._by_secret.get(key, ()))

    def forget_secret(self, key: Key) -> list[Key]:
        """Drop a Secret's data (nothing references it any more); as if it were deleted."""
        return self.apply_secret(raw.DELETED, {"metadata": {"namespace": key[0], "name": key[1]}})

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
            compiled=self._compile_spec(key, obj),
        )
        self._entries[key] = entry
        if entry.path is not None:
            self._by_path[entry.path] = key

    def _compile_spec(self, key: Key, obj: Mapping[str, Any]) -> Compiled | Refusal:
        """The Receiver's CEL compiled, once per generation."""
        generation = int(raw.mapping(obj.get("metadata")).get("generation") or 0)
        cached = self._compiled.get(key)
        if cached is not None and cached[0] == generation:
            return cached[1]
        spec = raw.mapping(obj.get("spec"))
        result: Compiled | Refusal
        try:
            result = compile_spec(spec, namespace=key[0], compile=self._compile or _no_cel)
        except InvalidExpression as exc:
            result = Refusal(REASON_INVALID_CEL, f"{TERMINAL}: {exc}")
        except ReceiverSpecInvalid as exc:
            result = Refusal(REASON_VALIDATION_FAILED, f"{TERMINAL}: {exc}")
        self._compiled[key] = (generation, result)
        return result


def _no_cel(source: str, **_: Any) -> Predicate:
    raise InvalidExpression(f"no CEL evaluator is configured for {source!r}")


def _secret_key(obj: Mapping[str, Any]) -> Key:
    secret_ref = raw.mapping(raw.mapping(obj.get("spec")).get("secretRef"))
    return (raw.object_key(obj)[0], raw.text(secret_ref.get("name")))


def build_entry(
    obj: Mapping[str, Any],
    *,
    secrets: Mapping[Key, Mapping[str, bytes]],
    supported_types: frozenset[str],
    compiled: Compiled | Refusal | None = None,
) -> ReceiverEntry:
    """The entry of one Receiver; `compiled` as `ReceiverTable` compiled its CEL (a refusal
    makes the Receiver not Ready, as Flux marks it terminally failed). A generic-oidc Receiver
    has no Secret: its path is derived from an empty token, as in Flux."""
    meta = raw.mapping(obj.get("metadata"))
    spec = raw.mapping(obj.get("spec"))
    namespace, name = raw.object_key(obj)
    type_name = raw.text(spec.get("type"))
    secret_name = _secret_key(obj)[1]
    oidc = type_name == GENERIC_OIDC
    secret = {} if oidc else secrets.get((namespace, secret_name))
    token = b"" if oidc else (secret.get("token") if secret is not None else None)
    path = webhook_path(token=token, name=name, namespace=namespace) if token is not None else None
    if isinstance(compiled, Refusal):
        ready, reason, message = False, compiled.reason, compiled.message
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
        filters=compiled.filters if isinstance(compiled, Compiled) else None,
        oidc_providers=compiled.oidc_providers if isinstance(compiled, Compiled) else (),
    )


def status_patch(entry: ReceiverEntry, *, now: str) -> dict[str, Any] | None:
    """The merge patch for `.status`, or None when the live status already says the same.

    `now` (RFC 3339) becomes the Ready condition's lastTransitionTime only when its status
    flips; otherwise the existing time is kept, as Kubernetes conditions require.
    A suspended Receiver's status is left untouched, as notification-controller leaves it.
    A `reconcile.fluxcd.io/requestedAt` annotation is echoed in `lastHandledReconcileAt`,
    which is what `flux reconcile receiver` waits for. A spec Flux fails terminally (invalid
    CEL, generic-oidc rules) is also `Stalled`, as Flux marks it; any other state is not.
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
    old_stalled = next((c for c in conditions if c.get("type") == STALLED), None)
    stalled = None
    if entry.reason in TERMINAL_REASONS:
        stalled = {
            "type": STALLED,
            "status": "True",
            "observedGeneration": entry.generation,
            "reason": entry.reason,
            "message": entry.message,
            "lastTransitionTime": (
                old_stalled.get("lastTransitionTime") if old_stalled is not None else now
            ),
        }
    handled = entry.requested_at or current.get("lastHandledReconcileAt")
    unchanged = (
        (
            old_stalled is None
            if stalled is None
            else old_stalled is not None and _same(old_stalled, stalled)
        )
        and current.get("lastHandledReconcileAt") == handled
        and current.get("webhookPath") == entry.path
        and current.get("observedGeneration") == entry.generation
        and old_ready is not None
        and _same(old_ready, ready)
    )
    if unchanged:
        return None
    others = [c for c in conditions if c.get("type") not in (READY, STALLED)]
    written: dict[str, Any] = {
        "webhookPath": entry.path,
        "observedGeneration": entry.generation,
        "conditions": [*others, ready, *([stalled] if stalled else [])],
    }
    if handled is not None:
        written["lastHandledReconcileAt"] = handled
    return {"status": written}


def _same(old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    return all(old.get(field) == value for field, value in new.items())
