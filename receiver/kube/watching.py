"""List-then-watch one resource, forever, feeding add/update/delete events to a callback.

Only streams: list (paginated), watch from the listed resourceVersion (with bookmarks), resume
from the last seen resourceVersion when a watch ends, list again on 410 Gone, and reconnect
with capped exponential backoff and jitter when the API server is unreachable. After every
re-list, objects that vanished meanwhile are reported as deletions. What the events mean is
the caller's business.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from dataclasses import dataclass, field

import structlog

from receiver import backoff
from receiver.config import WatchSettings
from receiver.errors import KubeError, KubeErrorFromEvent, KubeRejected, ResourceExpired
from receiver.kube.client import JsonObject, KubeClient
from receiver.kube.patching import OwnPatches
from receiver.objects import raw
from receiver.objects.resources import ResourceType

log = structlog.get_logger(__name__)

OnEvent = Callable[[str, JsonObject], None]
_LIST_PAGE = 500


@dataclass(slots=True)
class WatchState:
    """What a running watch exposes: whether its first list completed, and restart counts."""

    synced: asyncio.Event = field(default_factory=asyncio.Event)
    relists: int = 0
    reconnects: int = 0


async def watch_forever(
    *,
    client: KubeClient,
    resource: ResourceType,
    on_event: OnEvent,
    settings: WatchSettings,
    state: WatchState,
    namespace: str | None = None,
    label_selector: str | None = None,
    field_selector: str | None = None,
    own_patches: OwnPatches | None = None,
    rng: random.Random | None = None,
) -> None:
    """Run until cancelled. `on_event(type, object)` sees ADDED, MODIFIED and DELETED, except
    the MODIFIED events that only echo one of `own_patches` (our reconcile annotation)."""
    jitter = rng or random.Random()
    selectors = {"labelSelector": label_selector, "fieldSelector": field_selector}
    base_query = {key: value for key, value in selectors.items() if value}
    path = resource.collection_path(namespace=namespace)
    known: dict[tuple[str, str], str] = {}
    resource_version: str | None = None
    failures = 0
    logger = log.bind(resource=resource.plural, namespace=namespace or "*")
    while True:
        try:
            if resource_version is None:
                resource_version = await _relist(
                    client, resource, path, base_query, known, on_event
                )
                if state.synced.is_set():
                    state.relists += 1
                state.synced.set()
                logger.debug("watch_listed", objects=len(known))
            query = {
                **base_query,
                "watch": "true",
                "allowWatchBookmarks": "true",
                "resourceVersion": resource_version,
                "timeoutSeconds": str(settings.watch_timeout_s),
            }
            async for event in client.stream(
                path, query=query, timeout_s=settings.watch_timeout_s + 30
            ):
                resource_version = (
                    _apply(event, resource, known, on_event, own_patches) or resource_version
                )
                failures = 0
        except ResourceExpired:
            logger.info("watch_expired_relisting")
            resource_version = None
        except KubeError as exc:
            failures += 1
            delay = backoff.delay_s(
                attempt=failures,
                initial_s=settings.backoff_initial_s,
                max_s=settings.backoff_max_s,
                jitter=jitter.random(),
            )
            # A 403/400 will not heal by itself (fix the RBAC); anything else is transient.
            report = logger.error if isinstance(exc, KubeRejected) else logger.warning
            report("watch_failed", error=str(exc), retry_in_s=round(delay, 2))
            state.reconnects += 1
            await asyncio.sleep(delay)


def _typed(obj: JsonObject, resource: ResourceType) -> JsonObject:
    """List items may omit apiVersion and kind; consumers key objects by them."""
    obj.setdefault("apiVersion", resource.api_version)
    obj.setdefault("kind", resource.kind)
    return obj


def _apply(
    event: JsonObject,
    resource: ResourceType,
    known: dict[tuple[str, str], str],
    on_event: OnEvent,
    own_patches: OwnPatches | None = None,
) -> str | None:
    """Handle one watch event; returns the resourceVersion to resume from, if it moved."""
    kind = event.get("type")
    obj = event.get("object") or {}
    if kind == "ERROR":
        if obj.get("code") == 410:
            raise ResourceExpired(str(obj.get("message", "410 Gone")))
        raise KubeErrorFromEvent(str(obj.get("message", "watch error")))
    version = obj.get("metadata", {}).get("resourceVersion")
    if kind == "BOOKMARK":
        return str(version) if version else None
    key = raw.object_key(obj)
    if kind == raw.DELETED:
        known.pop(key, None)
    elif kind in (raw.ADDED, raw.MODIFIED):
        known[key] = str(version)
        if (
            kind == raw.MODIFIED
            and own_patches is not None
            and own_patches.consume(kind=resource.kind, namespace=key[0], name=key[1], obj=obj)
        ):
            return str(version)
    else:
        return None
    on_event(str(kind), _typed(obj, resource))
    return str(version) if version else None


async def _relist(
    client: KubeClient,
    resource: ResourceType,
    path: str,
    query: dict[str, str],
    known: dict[tuple[str, str], str],
    on_event: OnEvent,
) -> str:
    """List every page; report vanished objects as DELETED; returns the list resourceVersion."""
    seen: set[tuple[str, str]] = set()
    continue_token: str | None = None
    while True:
        page_query = {**query, "limit": str(_LIST_PAGE)}
        if continue_token:
            page_query["continue"] = continue_token
        page = await client.get(path, query=page_query, timeout_s=120)
        for obj in page.get("items") or []:
            key = raw.object_key(obj)
            seen.add(key)
            version = str(obj.get("metadata", {}).get("resourceVersion", ""))
            if known.get(key) != version:
                event = raw.MODIFIED if key in known else raw.ADDED
                known[key] = version
                on_event(event, _typed(obj, resource))
        metadata = page.get("metadata", {})
        continue_token = metadata.get("continue")
        if not continue_token:
            break
    for key in [key for key in known if key not in seen]:
        del known[key]
        gone = {"metadata": {"namespace": key[0], "name": key[1]}}
        on_event(raw.DELETED, _typed(gone, resource))
    return str(metadata.get("resourceVersion", ""))
