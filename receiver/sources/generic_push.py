"""The discovery endpoint `/webhooks/generic`: any CI job can say "I pushed this".

Verification as Flux's `generic-hmac` (`X-Signature: <algo>=<hex>` HMAC of the raw body).
Body: `{"repository": URL, "ref": "refs/heads/main", "after": SHA, "changed": [paths],
"default_branch": "main"}` for a Git push (`repositories` may list several URLs of the same
repository), or `{"image": "host/repo:tag"}` (optionally `"digest"`) for a registry push.
`changed` absent means unknown, so path filters never skip.
Pure: no I/O.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, model_validator

from receiver.errors import MalformedPayload
from receiver.events import Event, GitPush, ImagePush
from receiver.sources import generic_hmac
from receiver.sources.base import RawDelivery, Source, no_event, parse_model

TYPE_NAME = "generic-push"


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore")

    repository: str | None = None
    repositories: list[str] = []
    ref: str | None = None
    after: str | None = None
    deleted: bool = False
    default_branch: str | None = None
    changed: list[str] | None = None
    image: str | None = None
    digest: str | None = None

    @model_validator(mode="after")
    def _names_something(self) -> _Body:
        if self.image is None and not (self.repository or self.repositories):
            raise ValueError("name a 'repository' (with 'ref') or an 'image'")
        if self.image is None and not self.ref:
            raise ValueError("'ref' is required with 'repository'")
        return self


def parse(delivery: RawDelivery) -> tuple[Event, ...]:
    body = parse_model(_Body, delivery.body, what="generic push")
    did = delivery.header("x-request-id") or delivery.header("x-delivery-id")
    if body.image is not None:
        name, _, tag = (
            body.image.rpartition(":")
            if ":" in body.image.rsplit("/", 1)[-1]
            else (body.image, "", "")
        )
        return (
            ImagePush(
                source=TYPE_NAME,
                event="push",
                repository=name,
                tag=tag or None,
                digest=body.digest,
                delivery_id=did,
            ),
        )
    ref = body.ref or ""
    if not ref.startswith("refs/"):
        raise MalformedPayload(
            "'ref' must be a full ref name such as refs/heads/main or refs/tags/v1.0.0"
        )
    urls = tuple(
        dict.fromkeys([*([body.repository] if body.repository else []), *body.repositories])
    )
    return (
        GitPush(
            source=TYPE_NAME,
            event="push",
            repo_urls=urls,
            ref=ref,
            after=body.after,
            deleted=body.deleted,
            default_branch=body.default_branch,
            changed_paths=frozenset(body.changed) if body.changed is not None else None,
            delivery_id=did,
        ),
    )


SOURCE = Source(type_name=TYPE_NAME, verify=generic_hmac.verify, event_name=no_event, parse=parse)
