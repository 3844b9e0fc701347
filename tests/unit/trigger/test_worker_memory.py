"""The reconcile queue forgets patch times once they can no longer hold a request back."""

from __future__ import annotations

import pytest

from receiver.config import TriggerSettings
from receiver.events import ObjectRef
from receiver.kube.inventory import InventoryCluster
from receiver.metrics import Metrics
from receiver.trigger import worker


def repo(index: int) -> dict[str, object]:
    return {
        "apiVersion": "source.toolkit.fluxcd.io/v1",
        "kind": "GitRepository",
        "metadata": {"namespace": "ns", "name": f"r{index}"},
    }


async def test_patch_times_are_pruned_after_the_interval(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(worker, "_PRUNE_FLOOR", 5)
    clock = [100.0]
    queue = worker.ReconcileQueue(
        cluster=InventoryCluster([repo(i) for i in range(20)]),
        settings=TriggerSettings(workers=1, min_interval_s=1.0),
        metrics=Metrics(),
        monotonic=lambda: clock[0],
    )
    queue.start()
    refs = [
        ObjectRef("source.toolkit.fluxcd.io/v1", "GitRepository", "ns", f"r{i}") for i in range(20)
    ]
    queue.request_all(refs[:10], reason="first")
    await queue.settle()
    clock[0] += 5  # every remembered patch time is now older than the interval
    queue.request_all(refs[10:], reason="second")
    await queue.settle()
    remembered = len(queue._last_taken_s)
    await queue.drain()
    assert remembered <= 10  # the first ten were forgotten once the table passed the floor
