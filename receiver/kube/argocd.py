"""Argo CD's kinds at the Kubernetes edge: their API paths, and whether the cluster serves them.

Edge: one discovery call (`GET /apis/argoproj.io/v1alpha1`) at start-up decides whether the
Application and ApplicationSet watches start; a cluster without Argo CD answers 404 and
gitops-receiver runs for Flux alone, asking again every `argocd.recheck_interval_s`. What an
object means for routing is in `routing/argocd.py`; the refresh patch goes through the
reconcile queue like a Flux patch.
"""

from __future__ import annotations

import structlog

from receiver.errors import KubeError
from receiver.kube.client import KubeClient
from receiver.objects.resources import ResourceType
from receiver.routing import argocd

log = structlog.get_logger(__name__)

APPLICATION = ResourceType(
    argocd.GROUP, argocd.VERSION, argocd.PLURALS[argocd.APPLICATION], argocd.APPLICATION
)
APPLICATION_SET = ResourceType(
    argocd.GROUP, argocd.VERSION, argocd.PLURALS[argocd.APPLICATION_SET], argocd.APPLICATION_SET
)
KINDS: dict[str, ResourceType] = {
    APPLICATION.kind: APPLICATION,
    APPLICATION_SET.kind: APPLICATION_SET,
}


async def served_kinds(client: KubeClient, *, quiet: bool = False) -> tuple[ResourceType, ...]:
    """The Argo CD kinds the API server serves now; () without Argo CD's CRDs. Logged once at
    start-up; `quiet` for the periodic re-checks."""
    try:
        listing = await client.get(f"/apis/{argocd.API_VERSION}")
    except KubeError as exc:
        if not quiet:
            log.info("argocd_not_served", api_version=argocd.API_VERSION, detail=str(exc))
        return ()
    plurals = {item.get("name") for item in listing.get("resources") or ()}
    served = tuple(kind for kind in KINDS.values() if kind.plural in plurals)
    if not quiet:
        log.info("argocd_served", kinds=[kind.kind for kind in served])
    return served
