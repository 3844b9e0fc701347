"""GitHub Container Registry pushes, from GitHub's `package` and `registry_package` webhooks.

Discovery only: Flux has no `ghcr` Receiver type. Verification is GitHub's (`X-Hub-Signature-256`,
`receiver.sources.github.verify`); events from `X-GitHub-Event`, ids from `X-GitHub-Delivery`.
A push is `action` `published`/`updated` on a package whose `package_type` (or `ecosystem`) is
`container`; its name is `package_version.package_url` (`ghcr.io/owner/name:tag`) or else
`ghcr.io/<owner.login>/<name>`; tag and digest from `package_version.container_metadata.tag`.
Docs: https://docs.github.com/en/webhooks/webhook-events-and-payloads#package
Pure: no I/O.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from receiver.errors import MalformedPayload
from receiver.events import Event, Ignored, ImagePush
from receiver.sources import github, image_payload
from receiver.sources.base import RawDelivery, Source, json_document, parse_model

TYPE_NAME = "ghcr"
REGISTRY_HOST = "ghcr.io"
_PACKAGE_EVENTS = frozenset({"package", "registry_package"})
_PUSH_ACTIONS = frozenset({"published", "updated"})
_CONTAINER_TYPES = frozenset({"container", "docker"})


class _Tag(BaseModel):
    model_config = ConfigDict(extra="ignore")

    name: str | None = None
    digest: str | None = None


class _Manifest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    digest: str | None = None


class _ContainerMetadata(BaseModel):
    model_config = ConfigDict(extra="ignore")

    tag: _Tag | None = None
    manifest: _Manifest | None = None


class _PackageVersion(BaseModel):
    model_config = ConfigDict(extra="ignore")

    version: str | None = None
    package_url: str | None = None
    container_metadata: _ContainerMetadata | None = None


class _Owner(BaseModel):
    model_config = ConfigDict(extra="ignore")

    login: str | None = None


class _Package(BaseModel):
    model_config = ConfigDict(extra="ignore")

    name: str
    namespace: str | None = None
    owner: _Owner | None = None
    package_type: str | None = None
    ecosystem: str | None = None
    package_version: _PackageVersion | None = None


class _PackageEvent(BaseModel):
    model_config = ConfigDict(extra="ignore")

    action: str
    package: _Package | None = None
    registry_package: _Package | None = None


def parse(delivery: RawDelivery) -> tuple[Event, ...]:
    event = github.event_name(delivery) or ""
    did = github.delivery_id(delivery)
    if event not in _PACKAGE_EVENTS:
        reason = "ping" if event == "ping" else f"{event or 'unnamed'} event is not a package push"
        return (Ignored(source=TYPE_NAME, event=event, reason=reason, delivery_id=did),)
    hook = parse_model(_PackageEvent, json_document(delivery), what="GitHub package")
    if hook.action not in _PUSH_ACTIONS:
        reason = f"package {hook.action} is not a push"
        return (Ignored(source=TYPE_NAME, event=event, reason=reason, delivery_id=did),)
    package = hook.package or hook.registry_package
    if package is None:
        raise MalformedPayload(f"not a GitHub {event} payload: package missing")
    kinds = {(package.package_type or "").lower(), (package.ecosystem or "").lower()}
    if not kinds & _CONTAINER_TYPES:
        return (
            Ignored(
                source=TYPE_NAME, event=event, reason="not a container package", delivery_id=did
            ),
        )
    version = package.package_version or _PackageVersion()
    metadata = version.container_metadata or _ContainerMetadata()
    tag = metadata.tag or _Tag()
    from_url = image_payload.split_reference(version.package_url or "")
    if from_url.name:
        name = from_url.name
    else:
        owner = (package.owner.login if package.owner else None) or package.namespace or ""
        name = image_payload.join_name(REGISTRY_HOST, f"{owner}/{package.name}")
    digest = tag.digest or (metadata.manifest.digest if metadata.manifest else None)
    if digest is None and version.version and version.version.startswith("sha256:"):
        digest = version.version
    return (
        ImagePush(
            source=TYPE_NAME,
            event=event,
            repository=name,
            tag=tag.name or from_url.tag,
            digest=digest,
            delivery_id=did,
        ),
    )


SOURCE = Source(
    type_name=TYPE_NAME, verify=github.verify, event_name=github.event_name, parse=parse
)
