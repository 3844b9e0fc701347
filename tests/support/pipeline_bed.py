"""A pipeline on a dry-run inventory, without a server: for its unit tests and its benchmark.

The real pieces the service wires (receiver table, discovery indexes, reconcile queue over the
dry-run cluster, deduper), fed from `INVENTORY`: Receivers of several types and states, one
GitRepository with a Kustomization reading it, one ImageRepository, and discovery endpoints
(one whose Secret is absent). Every Secret holds the fixtures' token, so the recorded vendor
deliveries of `signed_fixtures` verify.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from receiver.config import DiscoveryEndpoint, SecretKeyRef, TriggerSettings
from receiver.dedupe import DeliveryDeduper
from receiver.events import ObjectRef
from receiver.kube import inventory
from receiver.metrics import Metrics
from receiver.objects import raw
from receiver.pipeline import Delivery, Pipeline
from receiver.routing.discovery import Discovery
from receiver.routing.receivers import ReceiverTable
from receiver.sources import registry
from receiver.sources.base import RawDelivery
from receiver.status.service import StatusService
from receiver.trigger.worker import ReconcileQueue
from tests.support import signed_fixtures as fx

NS = "flux-system"
SECRET = fx.SECRET.decode()
INVENTORY = f"""
apiVersion: v1
kind: Secret
metadata: {{name: webhook-token, namespace: {NS}}}
stringData: {{token: {SECRET}}}
---
apiVersion: notification.toolkit.fluxcd.io/v1
kind: Receiver
metadata: {{name: github, namespace: {NS}}}
spec:
  type: github
  events: ["ping", "push"]
  secretRef: {{name: webhook-token}}
  resources:
    - {{apiVersion: source.toolkit.fluxcd.io/v1, kind: GitRepository, name: fleet-infra}}
---
apiVersion: notification.toolkit.fluxcd.io/v1
kind: Receiver
metadata: {{name: two-targets, namespace: {NS}}}
spec:
  type: github
  secretRef: {{name: webhook-token}}
  resources:
    - {{apiVersion: source.toolkit.fluxcd.io/v1, kind: GitRepository, name: fleet-infra}}
    - {{apiVersion: kustomize.toolkit.fluxcd.io/v1, kind: Kustomization, name: apps}}
---
apiVersion: notification.toolkit.fluxcd.io/v1
kind: Receiver
metadata: {{name: bitbucket, namespace: {NS}}}
spec:
  type: bitbucket
  secretRef: {{name: webhook-token}}
  resources:
    - {{apiVersion: source.toolkit.fluxcd.io/v1, kind: GitRepository, name: fleet-infra}}
---
apiVersion: notification.toolkit.fluxcd.io/v1
kind: Receiver
metadata: {{name: generic, namespace: {NS}}}
spec:
  type: generic
  secretRef: {{name: webhook-token}}
  resources:
    - {{apiVersion: source.toolkit.fluxcd.io/v1, kind: GitRepository, name: fleet-infra}}
---
apiVersion: notification.toolkit.fluxcd.io/v1
kind: Receiver
metadata: {{name: gcr, namespace: {NS}}}
spec:
  type: gcr
  secretRef: {{name: webhook-token}}
  resources:
    - {{apiVersion: image.toolkit.fluxcd.io/v1beta2, kind: ImageRepository, name: podinfo}}
---
apiVersion: notification.toolkit.fluxcd.io/v1
kind: Receiver
metadata: {{name: suspended, namespace: {NS}}}
spec:
  type: github
  suspend: true
  secretRef: {{name: webhook-token}}
  resources:
    - {{apiVersion: source.toolkit.fluxcd.io/v1, kind: GitRepository, name: fleet-infra}}
---
apiVersion: notification.toolkit.fluxcd.io/v1
kind: Receiver
metadata: {{name: oidc, namespace: {NS}}}
spec:
  type: generic-oidc
  secretRef: {{name: webhook-token}}
  resources:
    - {{apiVersion: source.toolkit.fluxcd.io/v1, kind: GitRepository, name: fleet-infra}}
---
apiVersion: notification.toolkit.fluxcd.io/v1
kind: Receiver
metadata: {{name: cross, namespace: {NS}}}
spec:
  type: github
  secretRef: {{name: webhook-token}}
  resources:
    - {{kind: GitRepository, name: fleet-infra}}
    - {{kind: GitRepository, name: other, namespace: elsewhere}}
---
apiVersion: source.toolkit.fluxcd.io/v1
kind: GitRepository
metadata: {{name: fleet-infra, namespace: {NS}}}
spec:
  url: https://github.com/acme/fleet-infra
  ref: {{branch: main}}
---
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata: {{name: apps, namespace: {NS}}}
spec:
  path: ./apps
  sourceRef: {{kind: GitRepository, name: fleet-infra}}
---
apiVersion: image.toolkit.fluxcd.io/v1beta2
kind: ImageRepository
metadata: {{name: podinfo, namespace: {NS}}}
spec:
  image: docker.io/acme-corp/podinfo
"""
FLEET = ObjectRef("source.toolkit.fluxcd.io/v1", "GitRepository", NS, "fleet-infra")
APPS = ObjectRef("kustomize.toolkit.fluxcd.io/v1", "Kustomization", NS, "apps")
PODINFO = ObjectRef("image.toolkit.fluxcd.io/v1beta2", "ImageRepository", NS, "podinfo")
ENDPOINT_SECRET = SecretKeyRef(namespace=NS, name="webhook-token")
ENDPOINTS = {
    "github": DiscoveryEndpoint(secret_ref=ENDPOINT_SECRET),
    "dockerhub": DiscoveryEndpoint(secret_ref=ENDPOINT_SECRET),
    "gitlab": DiscoveryEndpoint(secret_ref=SecretKeyRef(namespace=NS, name="absent")),
}


@dataclass
class Bed:
    pipeline: Pipeline
    queue: ReconcileQueue
    receivers: ReceiverTable
    metrics: Metrics
    objects: list[dict[str, Any]]

    def path(self, receiver: str) -> str:
        entry = self.receivers.entry((NS, receiver))
        assert entry is not None and entry.path is not None, receiver
        return str(entry.path)

    async def hook(self, receiver: str, delivery: RawDelivery) -> Delivery:
        return await self.pipeline.handle_hook(self.path(receiver), delivery)

    async def webhooks(
        self, endpoint: str, delivery: RawDelivery, *, token: str | None = None
    ) -> Delivery:
        tokened = RawDelivery(headers=delivery.headers, body=delivery.body, path_token=token)
        return await self.pipeline.handle_discovery(endpoint, tokened)

    def signature_failures(self, source: str) -> float:
        value = self.metrics.registry.get_sample_value(
            "gitops_receiver_signature_failures_total", {"source": source}
        )
        return value or 0.0


def make_queue(metrics: Metrics, *, queue_size: int) -> ReconcileQueue:
    """A reconcile queue over the dry-run cluster; its workers never run here, so `depth` is
    what the pipeline queued."""
    return ReconcileQueue(
        cluster=inventory.InventoryCluster([]),
        settings=TriggerSettings(queue_size=queue_size),
        metrics=metrics,
    )


def make_bed(
    folder: Path,
    *,
    queue_size: int = 1_000,
    dedupe_window_s: float = 600,
    status: StatusService | None = None,
) -> Bed:
    """The pieces the service wires, fed from `INVENTORY` written into `folder`."""
    (folder / "inventory.yaml").write_text(INVENTORY)
    objects = inventory.load_objects(folder)
    metrics = Metrics()
    receivers = ReceiverTable(supported_types=frozenset(registry.SOURCES) - {"generic-oidc"})
    discovery = Discovery(with_downstream=True)
    for obj in objects:
        if obj["kind"] == "Secret":
            receivers.apply_secret(raw.ADDED, obj)
    for obj in objects:
        kind = obj["kind"]
        if kind == "Receiver":
            receivers.apply_receiver(raw.ADDED, obj)
        elif kind == "GitRepository":
            discovery.apply_git_repository(raw.ADDED, obj)
        elif kind in ("Kustomization", "HelmRelease"):
            discovery.apply_reader(raw.ADDED, obj)
        elif kind == "ImageRepository":
            discovery.apply_image_source(raw.ADDED, obj)
    queue = make_queue(metrics, queue_size=queue_size)
    pipeline = Pipeline(
        receivers=receivers,
        queue=queue,
        metrics=metrics,
        deduper=DeliveryDeduper(window_s=dedupe_window_s),
        discovery=discovery,
        endpoints=dict(ENDPOINTS),
        status=status,
    )
    return Bed(
        pipeline=pipeline, queue=queue, receivers=receivers, metrics=metrics, objects=objects
    )
