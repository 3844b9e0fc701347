"""Flux's `cdevents` type: a CDEvent in CloudEvents binary mode.

As in Flux, nothing authenticates the body (the secret webhook path is the credential); the
event type is the `Ce-Type` header, matched against `spec.events`, and the body must be a
CDEvent (`context` with version, id, source, type `dev.cdevents.<subject>.<predicate>.<x.y.z>`
and timestamp; `subject` with id and content), else 400. No CDEvent names a repository and a
ref that a push maps onto cleanly (`change.merged` names a change, not the target branch), so
every valid event is a `Signal`. Delivery id: `Ce-Id`, else `context.id`.
Docs: https://fluxcd.io/flux/components/notification/receivers/#cdevents,
https://github.com/cdevents/spec/blob/main/spec.md
Pure: no I/O.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from receiver.events import Event, Signal
from receiver.sources.base import RawDelivery, Source, no_verification, parse_model

TYPE_NAME = "cdevents"
_TYPE_PATTERN = r"^dev\.cdevents\.[a-z]+\.[a-z]+\.\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$"


class _Context(BaseModel):
    model_config = ConfigDict(extra="ignore")

    version: str | None = None  # up to spec 0.4
    specversion: str | None = None  # from spec 0.5
    id: str = Field(min_length=1)
    source: str = Field(min_length=1)
    type: str = Field(pattern=_TYPE_PATTERN)
    timestamp: datetime

    @model_validator(mode="after")
    def _has_version(self) -> _Context:
        if not (self.version or self.specversion):
            raise ValueError("context.version (or context.specversion) is required")
        return self


class _Subject(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: str = Field(min_length=1)
    content: dict[str, Any]


class _CDEvent(BaseModel):
    model_config = ConfigDict(extra="ignore")

    context: _Context
    subject: _Subject


def event_name(delivery: RawDelivery) -> str | None:
    return delivery.header("ce-type")


def parse(delivery: RawDelivery) -> tuple[Event, ...]:
    cdevent = parse_model(_CDEvent, delivery.body, what="CDEvent")
    return (
        Signal(
            source=TYPE_NAME,
            event=event_name(delivery) or cdevent.context.type,
            delivery_id=delivery.header("ce-id") or cdevent.context.id,
        ),
    )


SOURCE = Source(type_name=TYPE_NAME, verify=no_verification, event_name=event_name, parse=parse)
