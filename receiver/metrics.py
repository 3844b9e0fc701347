"""Prometheus metrics, all in one registry owned by the running app (tests get a fresh one).

Label values are fixed vocabularies (source type, outcome, kind): never a secret, a path
digest, a repository URL or anything else a sender controls.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.deliveries = Counter(
            "gitops_receiver_deliveries_total",
            "Webhook deliveries by source type and outcome.",
            ["source", "outcome"],
            registry=r,
        )
        self.delivery_latency = Histogram(
            "gitops_receiver_delivery_duration_seconds",
            "Time from request to answer, by source type.",
            ["source"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.signature_failures = Counter(
            "gitops_receiver_signature_failures_total",
            "Deliveries refused because the signature or token did not verify.",
            ["source"],
            registry=r,
        )
        self.reconcile_requests = Counter(
            "gitops_receiver_reconcile_requests_total",
            "Reconcile requests by target kind and outcome "
            "(patched, collapsed, not_found, rejected, failed, dry_run, refused).",
            ["kind", "outcome"],
            registry=r,
        )
        self.queue_depth = Gauge(
            "gitops_receiver_reconcile_queue_depth",
            "Reconcile requests waiting for a worker.",
            registry=r,
        )
        self.patch_latency = Histogram(
            "gitops_receiver_patch_duration_seconds",
            "Time of one reconcile patch against the API server, retries included.",
            ["kind"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.patch_retries = Counter(
            "gitops_receiver_patch_retries_total",
            "Reconcile patches retried after 429, 5xx or a connection error.",
            ["kind"],
            registry=r,
        )
        self.kube_events = Counter(
            "gitops_receiver_kube_events_total",
            "ReconcileRequested Events posted to the API server (created, failed, dropped).",
            ["outcome"],
            registry=r,
        )
        self.status_writes = Counter(
            "gitops_receiver_receiver_status_writes_total",
            "Receiver status subresource writes by outcome.",
            ["outcome"],
            registry=r,
        )
        self.watch_restarts = Counter(
            "gitops_receiver_watch_restarts_total",
            "Watches restarted, by resource and reason (relist, reconnect).",
            ["resource", "reason"],
            registry=r,
        )
        self.open_connections = Gauge(
            "gitops_receiver_open_connections",
            "Connections open on the webhook port (limit: limits.max_connections).",
            registry=r,
        )
        self.body_bytes_in_flight = Gauge(
            "gitops_receiver_body_bytes_in_flight",
            "Bytes of request bodies held across all connections "
            "(limit: limits.max_body_bytes_in_flight).",
            registry=r,
        )
        self.limit_refusals = Counter(
            "gitops_receiver_limit_refusals_total",
            "Requests or connections refused by a limit "
            "(connections: 503 and closed; body_bytes_in_flight: 503; client_rate: 429).",
            ["limit"],
            registry=r,
        )
        self.connections_closed = Counter(
            "gitops_receiver_connections_closed_total",
            "Connections closed by a time limit (header_timeout, body_timeout, idle_timeout) "
            "or for a request that is not HTTP (bad_request).",
            ["reason"],
            registry=r,
        )
