"""Flux's `generic` type: the secret webhook path is the only credential; the body is not read.

GitLab's agent for Kubernetes calls such receivers with an empty body and no headers.
Pure: no I/O.
"""

from __future__ import annotations

from receiver.events import Event, Signal
from receiver.sources.base import RawDelivery, Source, no_event, no_verification


def parse(delivery: RawDelivery) -> tuple[Event, ...]:
    return (Signal(source="generic", delivery_id=delivery.header("x-request-id")),)


SOURCE = Source(type_name="generic", verify=no_verification, event_name=no_event, parse=parse)
