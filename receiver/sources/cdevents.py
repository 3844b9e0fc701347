"""Flux's `cdevents` type: a CDEvent in CloudEvents binary mode, checked against its schema.

As in Flux, nothing authenticates the body (the secret webhook path is the credential); the
event type is the `Ce-Type` header, matched against `spec.events`. The body must be a CDEvent
of spec 0.4.1, the spec that notification-controller v1.9 reads (`cdevents/sdk-go` v0.5.0,
package `v04`, then `api.Validate`), else 400:
- `context.type` is `dev.cdevents.<subject>.<predicate>.<version>` (or a custom
  `dev.cdeventsx.<tool>-<subject>.<predicate>.<version>`), and spec 0.4.1 has that event;
- the body matches that event's JSON schema (shipped in `cdevents_schemas/`, compiled once
  per event type on first use). The schema pins the type's version (`change.merged` must be
  `0.2.0`), so an event of another spec release fails on `context.type`;
- `context.schemaUri` is absent: Flux registers no custom schema, so it rejects any.
Fields the schema does not declare are ignored, as the SDK's Go types drop them before Flux
validates. No CDEvent names a repository and a ref that a push maps onto cleanly
(`change.merged` names a change, not the target branch), so every valid event is a `Signal`.
Delivery id: `Ce-Id`, else `context.id`.
Docs: https://fluxcd.io/flux/components/notification/receivers/#cdevents,
https://github.com/cdevents/spec/blob/v0.4.1/spec.md
Pure: no I/O beyond reading the package's own schema files on first use of each type.
"""

from __future__ import annotations

import functools
import importlib.resources
import json
import re
from collections.abc import Callable
from typing import Any

import fastjsonschema

from receiver import fastjson
from receiver.errors import MalformedPayload
from receiver.events import Event, Signal
from receiver.sources.base import RawDelivery, Source, no_verification

TYPE_NAME = "cdevents"
SPEC_VERSION = "0.4.1"
"""The CDEvents spec whose schemas bodies must match (the one Flux v1.9's reader validates)."""
SCHEMA_BASE = f"https://cdevents.dev/{SPEC_VERSION}/schema/"
_TYPE = re.compile(r"^dev\.cdevents\.(?P<subject>[a-z]+)\.(?P<predicate>[a-z]+)\.(?P<version>.*)$")
_CUSTOM_TYPE = re.compile(
    r"^dev\.cdeventsx\.(?P<tool>[a-z]+)-(?P<subject>[a-z]+)\.(?P<predicate>[a-z]+)\.(?P<version>.*)$"
)
_SCHEMAS = importlib.resources.files("receiver.sources") / "cdevents_schemas" / SPEC_VERSION

Validator = Callable[[Any], Any]
_SHOWN_TYPE_CHARS = 120
"""A sender's type is named in answers and logs up to this length, never beyond."""


def _shown(event_type: str) -> str:
    if len(event_type) > _SHOWN_TYPE_CHARS:
        return repr(event_type[:_SHOWN_TYPE_CHARS]) + "..."
    return repr(event_type)


def schema_document(uri: str) -> dict[str, Any]:
    """The shipped schema with this `$id` (or SDK key); never fetched from the network."""
    if not uri.startswith(SCHEMA_BASE):
        raise MalformedPayload(f"CDEvents schema {uri} is not shipped with gitops-receiver")
    document = _SCHEMAS.joinpath(*f"{uri.removeprefix(SCHEMA_BASE)}.json".split("/"))
    if not document.is_file():
        raise MalformedPayload(f"CDEvents schema {uri} is not shipped with gitops-receiver")
    loaded: dict[str, Any] = json.loads(document.read_text(encoding="utf-8"))
    return loaded


@functools.cache
def validator(name: str) -> tuple[dict[str, Any], Validator]:
    """(schema, compiled validator) of one event schema, e.g. `change-merged-event`."""
    schema = schema_document(SCHEMA_BASE + name)
    compiled = fastjsonschema.compile(
        schema,
        # $refs resolve to the shipped files only, never over the network
        handlers={"https": schema_document, "http": schema_document},
        use_default=False,  # never fill in the schema's defaults: validate what was sent
    )
    return schema, compiled


@functools.cache
def schema_names() -> frozenset[str]:
    """The event schemas shipped (`<subject>-<predicate>-event` and `custom`)."""
    return frozenset(
        entry.name.removesuffix(".json")
        for entry in _SCHEMAS.iterdir()
        if entry.is_file() and entry.name.endswith(".json")
    )


def schema_name(event_type: object) -> str:
    """The schema a CDEvent type is checked against, or MalformedPayload naming the type."""
    if not isinstance(event_type, str):
        raise MalformedPayload("not a CDEvent payload: body.context.type must be a string")
    if _CUSTOM_TYPE.match(event_type):
        return "custom"
    found = _TYPE.match(event_type)
    if found is None:
        raise MalformedPayload(f"not a CDEvent payload: {_shown(event_type)} is not a CDEvent type")
    name = f"{found['subject']}-{found['predicate']}-event"
    if name not in schema_names():
        raise MalformedPayload(
            f"unknown CDEvent type {_shown(event_type)}: not an event of CDEvents {SPEC_VERSION}"
        )
    return name


def declared_only(value: Any, schema: Any) -> Any:
    """`value` without the object members `schema` does not declare (where it closes the object
    with `additionalProperties: false`), as the SDK's Go types drop them when Flux reads a body."""
    if not isinstance(value, dict) or not isinstance(schema, dict):
        return value
    declared = schema.get("properties")
    if not isinstance(declared, dict):
        return value
    closed = schema.get("additionalProperties") is False
    return {
        key: declared_only(member, declared.get(key))
        for key, member in value.items()
        if key in declared or not closed
    }


def check(body: Any) -> tuple[str, str]:
    """Check a decoded body as a CDEvent of spec 0.4.1; returns (context.type, context.id), or
    raises MalformedPayload naming the type and the first schema violation (never the body)."""
    if not isinstance(body, dict) or not isinstance(body.get("context"), dict):
        raise MalformedPayload("not a CDEvent payload: body.context must be an object")
    event_type = body["context"].get("type")
    schema, validate = validator(schema_name(event_type))
    try:
        validate(declared_only(body, schema))
    except fastjsonschema.JsonSchemaValueException as exc:
        name = exc.name or "data"  # fastjsonschema names the value "data", its paths "data.x"
        problem = str(exc.message).replace(name, "body" + name.removeprefix("data"), 1)
        raise MalformedPayload(
            f"CDEvent {_shown(event_type)} does not match the CDEvents {SPEC_VERSION} "
            f"schema: {problem}"
        ) from None
    if body["context"].get("schemaUri") is not None:
        raise MalformedPayload(
            f"CDEvent {_shown(event_type)}: context.schemaUri names a custom schema, "
            "which is not registered (as in Flux)"
        )
    return str(event_type), str(body["context"]["id"])


def event_name(delivery: RawDelivery) -> str | None:
    return delivery.header("ce-type")


def parse(delivery: RawDelivery) -> tuple[Event, ...]:
    try:
        body = fastjson.loads(delivery.body)
    except ValueError:
        raise MalformedPayload("not a CDEvent payload: body is not JSON") from None
    event_type, event_id = check(body)
    return (
        Signal(
            source=TYPE_NAME,
            event=event_name(delivery) or event_type,
            delivery_id=delivery.header("ce-id") or event_id,
        ),
    )


SOURCE = Source(type_name=TYPE_NAME, verify=no_verification, event_name=event_name, parse=parse)
