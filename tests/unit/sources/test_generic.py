"""`generic`: the secret path is the only credential; any body is a Signal (GitLab's agent)."""

from __future__ import annotations

from receiver.events import Signal
from receiver.sources import generic
from receiver.sources.base import Credentials, RawDelivery


def test_empty_post_from_gitlab_agent_is_a_signal() -> None:
    delivery = RawDelivery(headers={}, body=b"")
    generic.SOURCE.verify(delivery, Credentials(token=b""))
    assert generic.parse(delivery) == (Signal(source="generic"),)
    assert generic.SOURCE.event_name(delivery) is None


def test_body_is_never_read() -> None:
    delivery = RawDelivery(headers={"x-request-id": "r-1"}, body=b"\xff not json")
    generic.SOURCE.verify(delivery, Credentials(token=b"anything"))
    assert generic.parse(delivery) == (Signal(source="generic", delivery_id="r-1"),)
