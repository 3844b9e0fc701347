"""CEL on the Receiver path, as Flux evaluates it: resource filters and OIDC claim checks.

Resource filters (`spec.resourceFilter`, `resources[].filter`):
As notification-controller does: the request body is decoded once into `req` (only when the
Content-Type is `application/json`, else `{}`; for `gcr` the unwrapped Pub/Sub message), each
object the Receiver names is read from the API server (`res`: apiVersion, kind, metadata),
and it is reconciled only when every filter that applies returns true. An evaluation error
skips that object and fails the request once the others are queued. Only Receivers with a
filter come here: the others never read the cluster on the request path.

OIDC claims (generic-oidc, `check_claims`): the provider's `variables` are evaluated in order
into `vars`, then every `validation`; the messages of those that are false refuse the request.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import structlog

from receiver import expressions
from receiver.errors import (
    AuthenticationFailed,
    ExpressionFailed,
    MalformedPayload,
    TargetNotFound,
)
from receiver.events import ObjectRef
from receiver.kube.patching import Cluster
from receiver.objects import raw
from receiver.objects.resources import Selector
from receiver.routing.index import Skip, SkipCause
from receiver.routing.receivers import Filters, OidcProvider, Predicate
from receiver.sources.base import RawDelivery

log = structlog.get_logger(__name__)


@dataclass(slots=True)
class Filtered:
    """The objects every filter accepted, those one refused (for the delivery inspector), and
    what could not be decided (for the answer)."""

    accepted: list[ObjectRef] = field(default_factory=list)
    rejected: list[Skip] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)


def request_document(delivery: RawDelivery, *, type_name: str) -> dict[str, Any]:
    """`req` as Flux builds it: the JSON body when the Content-Type says JSON, else `{}`.

    Flux's gcr receiver replaces the body with the Pub/Sub message's data (`action`, `digest`,
    `tag`) before its filters run. A JSON body that is not an object is refused (Flux: 500).
    """
    if not _is_json(delivery.header("content-type") or ""):
        return {}
    try:
        value = json.loads(delivery.body)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise MalformedPayload(
            f"failed to parse request body as JSON for resourceFilter: {exc.__class__.__name__}"
        ) from None
    if not isinstance(value, dict):
        raise MalformedPayload("request body is not a JSON object: resourceFilter needs one")
    return _gcr_data(value) if type_name == "gcr" else value


def _is_json(content_type: str) -> bool:
    """Flux's `isJSONContent`: any comma-separated media type equal to application/json."""
    for part in content_type.split(","):
        media = part.split(";", 1)[0].strip().lower()
        if not media or "/" not in media:
            return False
        if media == "application/json":
            return True
    return False


def _gcr_data(envelope: Mapping[str, Any]) -> dict[str, Any]:
    message = envelope.get("message")
    data = message.get("data") if isinstance(message, Mapping) else None
    try:
        decoded = json.loads(base64.b64decode(str(data or ""), validate=False))
    except (binascii.Error, ValueError, RecursionError):
        decoded = None
    if not isinstance(decoded, dict):
        raise MalformedPayload("cannot decode GCR webhook body for resourceFilter")
    return {key: str(decoded.get(key) or "") for key in ("action", "digest", "tag")}


async def apply(
    filters: Filters,
    targets: Sequence[tuple[int, ObjectRef | Selector]],
    *,
    req: Mapping[str, Any],
    claims: Mapping[str, Any] | None,
    cluster: Cluster,
) -> Filtered:
    """Read each target (index into `spec.resources`, target) and keep what the filters accept.

    The API server is read once per named object and once per selector, as Flux does.
    """
    variables: dict[str, Any] = {"req": req, "res": {}}
    if "claims" in filters.variables:
        variables["claims"] = dict(claims or {})
    context = expressions.bind(variables)
    result = Filtered()
    for index, target in targets:
        predicates = [p for p in (filters.top, filters.per_resource[index]) if p is not None]
        if isinstance(target, Selector):
            objects = await cluster.select_metadata(target)
        else:
            try:
                objects = [await cluster.read_metadata(target)]
            except TargetNotFound:
                result.missing.append(str(target))
                continue
        for obj in objects:
            ref = ObjectRef(
                target.api_version,
                target.kind,
                target.namespace,
                raw.object_key(obj)[1],
            )
            _decide(ref, obj, predicates, context=context, result=result)
    return result


def _decide(
    ref: ObjectRef,
    obj: Mapping[str, Any],
    predicates: Sequence[Predicate],
    *,
    context: Any,
    result: Filtered,
) -> None:
    context.add_variable("res", dict(obj))
    for predicate in predicates:
        try:
            accepted = predicate.evaluate_bool(context)
        except ExpressionFailed as exc:
            result.failures.append(f"{ref}: {exc}")
            return
        if not accepted:
            reason = f"filter {predicate.source} is false"
            result.rejected.append(Skip(ref, SkipCause.FILTER, reason))
            log.debug("filtered_out", target=str(ref), expression=predicate.source)
            return
    result.accepted.append(ref)


def check_claims(provider: OidcProvider, claims: Mapping[str, Any]) -> None:
    """Flux's `oidcClaimsProcessor.Evaluate`: AuthenticationFailed naming every validation
    that is false, or the expression that failed to evaluate."""
    variables: dict[str, Any] = {}
    context = expressions.bind({"claims": dict(claims), "vars": variables})
    try:
        for variable in provider.variables:
            variables[variable.name] = variable.expression.evaluate(context)
            context.add_variable("vars", variables)
        failures = [
            validation.message
            for validation in provider.validations
            if not validation.expression.evaluate_bool(context)
        ]
    except ExpressionFailed as exc:
        raise AuthenticationFailed(f"token validation failed: {exc}") from None
    if failures:
        raise AuthenticationFailed(f"token validation failed: {'; '.join(failures)}")
