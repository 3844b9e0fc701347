"""Delivery-id memory: duplicates within the window, forgotten after it, bounded."""

from __future__ import annotations

from receiver.dedupe import DeliveryDeduper


def test_same_id_within_window_is_a_duplicate_per_scope() -> None:
    deduper = DeliveryDeduper(window_s=60)
    assert not deduper.seen_before(scope="a", delivery_id="d1", now_s=0)
    assert deduper.seen_before(scope="a", delivery_id="d1", now_s=30)
    assert not deduper.seen_before(scope="b", delivery_id="d1", now_s=30)
    assert not deduper.seen_before(scope="a", delivery_id="d1", now_s=61)


def test_missing_id_or_zero_window_never_dedupes() -> None:
    assert not DeliveryDeduper(window_s=60).seen_before(scope="a", delivery_id=None, now_s=0)
    zero = DeliveryDeduper(window_s=0)
    zero.seen_before(scope="a", delivery_id="x", now_s=0)
    assert not zero.seen_before(scope="a", delivery_id="x", now_s=0)


def test_memory_is_bounded_oldest_forgotten_first() -> None:
    deduper = DeliveryDeduper(window_s=1000, max_entries=3)
    for index in range(5):
        deduper.seen_before(scope="s", delivery_id=str(index), now_s=index)
    assert deduper.seen_before(scope="s", delivery_id="4", now_s=5)
    assert not deduper.seen_before(scope="s", delivery_id="0", now_s=5)
