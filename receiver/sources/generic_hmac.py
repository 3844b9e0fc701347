"""Flux's `generic-hmac` type: `X-Signature: <algo>=<hex>`, an HMAC of the raw body.

Algorithms: sha1, sha256, sha512, keyed with the Secret's `token`. The body is not parsed.
Docs: https://fluxcd.io/flux/components/notification/receivers/#generic-hmac
Pure: no I/O.
"""

from __future__ import annotations

from receiver.events import Event, Signal
from receiver.sources.base import Credentials, RawDelivery, Source, no_event, verify_hmac_header


def verify(delivery: RawDelivery, credentials: Credentials) -> None:
    verify_hmac_header(
        delivery,
        credentials,
        header="X-Signature",
        hint="send X-Signature: sha256=<hex HMAC of the body keyed with the token>",
    )


def parse(delivery: RawDelivery) -> tuple[Event, ...]:
    return (Signal(source="generic-hmac", delivery_id=delivery.header("x-request-id")),)


SOURCE = Source(type_name="generic-hmac", verify=verify, event_name=no_event, parse=parse)
