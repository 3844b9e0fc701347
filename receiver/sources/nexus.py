"""Flux's `nexus` type: Sonatype Nexus Repository 3 repository webhooks.

Verification: `X-Nexus-Webhook-Signature` is the hex HMAC-SHA1 of the raw body keyed with the
receiver token (the capability's "Secret Key"); constant time. Event: `X-Nexus-Webhook-Id`
(`rm:repository:component`, `rm:repository:asset`, `rm:global:audit`, ...); delivery id:
`X-Nexus-Webhook-Delivery`. Body: `action` (`CREATED`, `UPDATED`, `DELETED`), `repositoryName`,
`component.{format, name, version}` or `asset.{format, name}`.
Why no ImagePush: the payload names the Nexus repository, never the host:port of its Docker
connector, so a `docker` component cannot be told apart from a Docker Hub image. A created or
updated component or asset is therefore a `Signal` (Flux's behaviour: reconcile the Receiver's
resources); deletions and non-repository events are Ignored.
Docs: https://help.sonatype.com/en/example-headers-and-payloads.html
Pure: no I/O.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from receiver.errors import AuthenticationFailed
from receiver.events import Event, Ignored, Signal
from receiver.sources.base import (
    Credentials,
    RawDelivery,
    Source,
    hmac_matches,
    parse_model,
    require_header,
)

TYPE_NAME = "nexus"
SIGNATURE_HEADER = "X-Nexus-Webhook-Signature"
_REPOSITORY_EVENTS = frozenset({"rm:repository:component", "rm:repository:asset"})
_PUSH_ACTIONS = frozenset({"CREATED", "UPDATED"})


class _Item(BaseModel):
    model_config = ConfigDict(extra="ignore")

    format: str | None = None
    name: str | None = None
    version: str | None = None


class _RepositoryEvent(BaseModel):
    model_config = ConfigDict(extra="ignore")

    action: str
    repository_name: str | None = Field(default=None, alias="repositoryName")
    component: _Item | None = None
    asset: _Item | None = None


def event_name(delivery: RawDelivery) -> str | None:
    return delivery.header("x-nexus-webhook-id")


def verify(delivery: RawDelivery, credentials: Credentials) -> None:
    signature = require_header(
        delivery, SIGNATURE_HEADER, hint="set a Secret Key on the Nexus webhook capability"
    )
    if not hmac_matches(
        key=credentials.token, body=delivery.body, algorithm="sha1", hex_digest=signature
    ):
        raise AuthenticationFailed(f"{SIGNATURE_HEADER} does not match the body: check the key")


def parse(delivery: RawDelivery) -> tuple[Event, ...]:
    event = event_name(delivery) or ""
    did = delivery.header("x-nexus-webhook-delivery")
    hook = parse_model(_RepositoryEvent, delivery.body, what="Nexus repository webhook")
    if event and event not in _REPOSITORY_EVENTS:
        return (
            Ignored(
                source=TYPE_NAME, event=event, reason="not a repository event", delivery_id=did
            ),
        )
    if hook.action not in _PUSH_ACTIONS:
        return (
            Ignored(
                source=TYPE_NAME,
                event=event,
                reason=f"{hook.action} is not a push",
                delivery_id=did,
            ),
        )
    return (Signal(source=TYPE_NAME, event=event, delivery_id=did),)


SOURCE = Source(type_name=TYPE_NAME, verify=verify, event_name=event_name, parse=parse)
