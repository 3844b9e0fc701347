"""The staged delivery flow on a dry-run inventory, without a server: both paths, every outcome.

The pipeline runs on the real pieces the service wires (receiver table, discovery indexes,
reconcile queue over the dry-run cluster, deduper, status service), fed from an inventory of
Kubernetes YAML; deliveries are the recorded vendor fixtures, signed with their credentials.
Each test reads the `Delivery` record the HTTP edge answers from, and what reached the queue.
"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from receiver.config import StatusSettings
from receiver.errors import (
    AuthenticationFailed,
    JwksUnavailable,
    MalformedPayload,
    QueueDraining,
    QueueFull,
    ReceiverError,
    ReceiverNotReady,
    UnknownHook,
)
from receiver.events import GitPush, Signal
from receiver.http import server
from receiver.metrics import Metrics
from receiver.objects import raw
from receiver.oidc_keys import JwksCache
from receiver.pipeline import DISCOVERY_PATH, RECEIVER_PATH, Delivery, Outcome
from receiver.sources.base import RawDelivery
from receiver.status.model import StatusUpdate
from receiver.status.service import StatusService
from tests.support import delivery_fixtures
from tests.support import signed_fixtures as fx
from tests.support.pipeline_bed import (
    APPS,
    FLEET,
    NS,
    PODINFO,
    SECRET,
    Bed,
    make_bed,
    make_queue,
)


@pytest.fixture
def bed(tmp_path: Path) -> Bed:
    return make_bed(tmp_path)


def refused(record: Delivery, error: type[ReceiverError], status: int) -> ReceiverError:
    """The record of a refused delivery: its error, the status the edge gives it, no outcome."""
    assert record.outcome is None and isinstance(record.error, error), record
    assert server.answer_for(record.error) is not None
    assert server.answer_for(record.error)[0] == status  # type: ignore[index]
    return record.error


def github_push_to(repository: str) -> RawDelivery:
    body = delivery_fixtures.body("github", "push").replace(b"acme/fleet-infra", repository)
    return fx.load("github", "push", body=body)


# --- the Receiver path -------------------------------------------------------------------------


async def test_receiver_push_is_accepted_and_queues_every_resource(bed: Bed) -> None:
    delivery = fx.load("github", "push")
    record = await bed.hook("github", delivery)
    assert record.path_kind == RECEIVER_PATH
    assert (record.receiver, record.endpoint, record.source) == (f"{NS}/github", None, "github")
    assert (record.outcome, record.error, record.targets) == (Outcome.ACCEPTED, None, (FLEET,))
    assert record.event_type == "push"
    assert record.delivery_id == delivery.headers["x-github-delivery"]
    (push,) = record.events
    assert isinstance(push, GitPush) and push.ref == "refs/heads/main"
    assert record.answer() == {"status": "accepted", "targets": 1}
    assert bed.queue.depth == 1
    assert SECRET not in repr(record)


async def test_receiver_signal_reconciles_like_flux(bed: Bed) -> None:
    record = await bed.hook("generic", RawDelivery(headers={"x-request-id": "r-1"}, body=b""))
    assert (record.outcome, record.targets, record.delivery_id) == (
        Outcome.ACCEPTED,
        (FLEET,),
        "r-1",
    )
    assert isinstance(record.events[0], Signal)


async def test_a_changed_receiver_reconciles_its_new_resources(bed: Bed) -> None:
    assert (await bed.hook("github", fx.load("github", "push"))).targets == (FLEET,)
    (receiver,) = [
        o for o in bed.objects if o["kind"] == "Receiver" and o["metadata"]["name"] == "github"
    ]
    changed = copy.deepcopy(receiver)
    changed["spec"]["resources"] = [
        {"apiVersion": APPS.api_version, "kind": "Kustomization", "name": "apps"}
    ]
    bed.receivers.apply_receiver(raw.MODIFIED, changed)
    again = fx.with_headers(fx.load("github", "push"), x_github_delivery="another-delivery")
    assert (await bed.hook("github", again)).targets == (APPS,)


async def test_refused_reference_is_counted_on_every_delivery(bed: Bed) -> None:
    bed.pipeline.allow_cross_namespace = False
    for delivery_id in ("one", "two"):
        delivery = fx.with_headers(fx.load("github", "push"), x_github_delivery=delivery_id)
        record = await bed.hook("cross", delivery)
        assert (record.outcome, record.targets) == (Outcome.ACCEPTED, (FLEET,))
    refusals = bed.metrics.registry.get_sample_value(
        "gitops_receiver_reconcile_requests_total", {"kind": "GitRepository", "outcome": "refused"}
    )
    assert refusals == 2


async def test_event_not_in_spec_events_is_filtered(bed: Bed) -> None:
    record = await bed.hook("github", fx.load("github", "pull_request"))
    assert (record.outcome, record.event_type) == (Outcome.FILTERED, "pull_request")
    assert record.answer() == {
        "status": "ignored",
        "reason": "event 'pull_request' is not in spec.events",
    }
    assert record.events == () and bed.queue.depth == 0


async def test_receiver_ping_is_ignored(bed: Bed) -> None:
    record = await bed.hook("github", fx.load("github", "ping"))
    assert record.outcome is Outcome.IGNORED
    assert record.answer() == {"status": "ignored", "reason": "ping"}
    assert bed.queue.depth == 0


async def test_unknown_path_is_404(bed: Bed) -> None:
    record = await bed.pipeline.handle_hook("/hook/" + "0" * 64, fx.load("github", "push"))
    refused(record, UnknownHook, 404)
    assert (record.receiver, record.source) == (None, None)


@pytest.mark.parametrize(
    ("receiver", "message"),
    [("suspended", "receiver is suspended"), ("oidc", "receiver is not ready: ValidationFailed")],
)
async def test_suspended_or_not_ready_receiver_is_503(
    bed: Bed, receiver: str, message: str
) -> None:
    record = await bed.hook(receiver, fx.load("github", "push"))
    assert str(refused(record, ReceiverNotReady, 503)) == message
    assert record.receiver == f"{NS}/{receiver}" and bed.queue.depth == 0


async def test_bad_signature_is_401_and_counted(bed: Bed) -> None:
    signed = fx.load("github", "push")
    forged = RawDelivery(headers=signed.headers, body=fx.flip_byte(signed.body))
    record = await bed.hook("github", forged)
    refused(record, AuthenticationFailed, 401)
    assert record.event_type is None and record.events == ()
    assert bed.signature_failures("github") == 1
    assert bed.queue.depth == 0


async def test_bad_payload_is_400(bed: Bed) -> None:
    record = await bed.hook("github", fx.load("github", "push", body=b'{"ref": 1}'))
    refused(record, MalformedPayload, 400)
    assert record.event_type == "push" and bed.queue.depth == 0


async def test_redelivery_is_a_duplicate(bed: Bed) -> None:
    delivery = fx.load("github", "push")
    assert (await bed.hook("github", delivery)).outcome is Outcome.ACCEPTED
    again = await bed.hook("github", delivery)
    assert again.outcome is Outcome.DUPLICATE
    assert again.answer() == {"status": "duplicate", "reason": "delivery already accepted"}
    assert bed.queue.depth == 1


async def test_full_queue_is_503_and_the_retry_is_taken(tmp_path: Path) -> None:
    bed = make_bed(tmp_path, queue_size=1)
    delivery = fx.load("github", "push")
    record = await bed.hook("two-targets", delivery)
    refused(record, QueueFull, 503)
    assert record.events and bed.queue.depth == 0
    # The sender retries once there is room: taken, not answered as a duplicate.
    bed.pipeline.queue = make_queue(Metrics(), queue_size=2)
    retried = await bed.hook("two-targets", delivery)
    assert (retried.outcome, set(retried.targets)) == (Outcome.ACCEPTED, {FLEET, APPS})


async def test_draining_queue_is_503(bed: Bed) -> None:
    await bed.queue.drain()
    record = await bed.hook("github", fx.load("github", "push"))
    assert "shutting down" in str(refused(record, QueueDraining, 503))


async def test_signing_keys_unavailable_is_503(bed: Bed, tmp_path: Path) -> None:
    bed.pipeline.key_caches = {"gcr": JwksCache(location=str(tmp_path / "no-such-jwks.json"))}
    record = await bed.hook("gcr", fx.load("gcr", "insert"))
    refused(record, JwksUnavailable, 503)
    assert record.source == "gcr" and bed.queue.depth == 0


async def test_push_of_several_refs_reports_statuses_for_every_ref(tmp_path: Path) -> None:
    """A Bitbucket push moving main and adding a tag (and deleting a branch) on a Receiver:
    both new commits get a pending status, not just the first ref's."""
    status = StatusService(
        settings=StatusSettings.model_validate(
            {
                "cluster": "test",
                "forges": [
                    {
                        "kind": "github",
                        "host": "bitbucket.example.com",
                        "api_base_url": "http://127.0.0.1:9/api",
                        "token_secret_ref": {"namespace": NS, "name": "webhook-token"},
                    }
                ],
            }
        ),
        secret_lookup=lambda namespace, name: None,
        registry=Metrics().registry,
    )
    posted: list[StatusUpdate] = []
    status.reporter.on_done = lambda update, outcome: posted.append(update)
    bed = make_bed(tmp_path, status=status)
    payload = fx.load_json("bitbucket", "server_push")
    changes = payload["changes"]
    assert isinstance(changes, list)
    main, tag, _deleted = changes
    tag["toHash"] = "b" * 40
    delivery = fx.redelivered("bitbucket", "server_push", payload)
    record = await bed.hook("bitbucket", delivery)
    assert record.outcome is Outcome.ACCEPTED and record.targets == (FLEET,)
    assert [e.ref for e in record.events if isinstance(e, GitPush)] == [
        "refs/heads/main",
        "refs/tags/v1.4.0",
        "refs/heads/feature/old",
    ]
    await status.stop(drain_timeout_s=0)  # never started: what was queued is reported dropped
    assert sorted((u.sha, u.state.value, u.name.rsplit("/", 1)[-1]) for u in posted) == [
        (main["toHash"], "pending", "apps"),
        ("b" * 40, "pending", "apps"),
    ]


# --- the discovery path ------------------------------------------------------------------------


async def test_endpoint_push_routes_to_the_repository_and_what_reads_it(bed: Bed) -> None:
    record = await bed.webhooks("github", fx.load("github", "push"))
    assert record.path_kind == DISCOVERY_PATH
    assert (record.receiver, record.endpoint, record.source) == (None, "github", "github")
    assert (record.outcome, set(record.targets)) == (Outcome.ACCEPTED, {FLEET, APPS})
    assert record.answer() == {"status": "accepted", "targets": 2, "skipped": 0}
    assert bed.queue.depth == 2


async def test_endpoint_push_nobody_watches_is_unrouted(bed: Bed) -> None:
    record = await bed.webhooks("github", github_push_to(b"acme/elsewhere"))
    assert (record.outcome, record.targets) == (Outcome.UNROUTED, ())
    assert record.answer() == {
        "status": "accepted",
        "targets": 0,
        "skipped": 0,
        "reason": "no GitRepository or Argo CD object points at this repository",
    }


async def test_endpoint_non_push_event_is_ignored(bed: Bed) -> None:
    record = await bed.webhooks("github", fx.load("github", "pull_request"))
    assert record.outcome is Outcome.IGNORED
    assert record.answer() == {"status": "ignored", "reason": "pull_request event is not a push"}


async def test_unknown_endpoint_is_404(bed: Bed) -> None:
    record = await bed.webhooks("gitea", fx.load("gitea", "push"))
    refused(record, UnknownHook, 404)
    assert (record.endpoint, record.source) == (None, None)


async def test_endpoint_without_its_secret_is_503(bed: Bed) -> None:
    record = await bed.webhooks("gitlab", fx.load("gitlab", "push"))
    assert "absent" in str(refused(record, ReceiverNotReady, 503))
    assert (record.endpoint, record.source) == ("gitlab", "gitlab")


async def test_endpoint_bad_signature_is_401(bed: Bed) -> None:
    signed = fx.load("github", "push")
    record = await bed.webhooks(
        "github", RawDelivery(headers=signed.headers, body=fx.flip_byte(signed.body))
    )
    refused(record, AuthenticationFailed, 401)
    assert bed.signature_failures("github") == 1


async def test_endpoint_bad_payload_is_400(bed: Bed) -> None:
    record = await bed.webhooks("github", fx.load("github", "push", body=b"[]"))
    refused(record, MalformedPayload, 400)


async def test_endpoint_redelivery_is_a_duplicate(bed: Bed) -> None:
    delivery = fx.load("github", "push")
    assert (await bed.webhooks("github", delivery)).outcome is Outcome.ACCEPTED
    assert (await bed.webhooks("github", delivery)).outcome is Outcome.DUPLICATE
    # Receivers and endpoints keep their ids apart: the same delivery to a Receiver is new.
    assert (await bed.hook("github", delivery)).outcome is Outcome.ACCEPTED


async def test_endpoint_full_queue_is_503(tmp_path: Path) -> None:
    bed = make_bed(tmp_path, queue_size=1)
    record = await bed.webhooks("github", fx.load("github", "push"))
    refused(record, QueueFull, 503)
    bed.pipeline.queue = make_queue(Metrics(), queue_size=2)
    retried = await bed.webhooks("github", fx.load("github", "push"))
    assert retried.outcome is Outcome.ACCEPTED


async def test_unsigned_sender_authenticates_by_the_token_in_the_path(bed: Bed) -> None:
    delivery = fx.load("dockerhub", "push")
    for token in (None, "not-the-token"):
        record = await bed.webhooks("dockerhub", delivery, token=token)
        assert "signs nothing" in str(refused(record, AuthenticationFailed, 401))
    assert bed.signature_failures("dockerhub") == 2
    record = await bed.webhooks("dockerhub", delivery, token=SECRET)
    assert (record.outcome, record.targets) == (Outcome.ACCEPTED, (PODINFO,))


async def test_signed_sender_takes_no_token_in_the_path(bed: Bed) -> None:
    record = await bed.webhooks("github", fx.load("github", "push"), token=SECRET)
    assert "takes no token" in str(refused(record, UnknownHook, 404))
    assert bed.queue.depth == 0
