"""CDEvents source (Flux's `cdevents` type): `Ce-Type` as the event, the body must be a CDEvent."""

from __future__ import annotations

import json

import pytest

from receiver.errors import MalformedPayload
from receiver.events import Signal
from receiver.sources import cdevents
from receiver.sources.base import Credentials
from tests.support import signed_fixtures as fx


def _with(path: tuple[str, ...], value: object) -> bytes:
    payload = fx.load_json("cdevents", "change_merged")
    node: dict[str, object] = payload
    for key in path[:-1]:
        child = node[key]
        assert isinstance(child, dict)
        node = child
    if value is None:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return json.dumps(payload).encode()


def test_change_merged_is_a_signal_named_by_ce_type() -> None:
    delivery = fx.load("cdevents", "change_merged")
    cdevents.SOURCE.verify(delivery, Credentials(token=b""))  # the secret path is the credential
    assert cdevents.event_name(delivery) == "dev.cdevents.change.merged.0.2.0"
    assert cdevents.parse(delivery) == (
        Signal(
            source="cdevents",
            event="dev.cdevents.change.merged.0.2.0",
            delivery_id="271069a8-fc18-44f1-b38f-9d70a1695819",
        ),
    )


def test_without_ce_headers_the_context_names_the_event() -> None:
    delivery = fx.without(fx.load("cdevents", "artifact_published"), "ce-type", "ce-id")
    assert cdevents.event_name(delivery) is None
    assert cdevents.parse(delivery) == (
        Signal(
            source="cdevents",
            event="dev.cdevents.artifact.published.0.1.1",
            delivery_id="0a6f1b2c-3d4e-4f50-8a6b-7c8d9e0f1a2b",
        ),
    )


def test_spec_0_5_specversion_is_accepted() -> None:
    body = _with(("context", "version"), None)
    body = json.dumps(
        {**json.loads(body), "context": {**json.loads(body)["context"], "specversion": "0.5.0"}}
    ).encode()
    (event,) = cdevents.parse(fx.load("cdevents", "change_merged", body=body))
    assert isinstance(event, Signal)


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("context", "version"), None),
        (("context", "id"), ""),
        (("context", "source"), None),
        (("context", "type"), "com.example.push"),
        (("context", "type"), "dev.cdevents.change.merged"),
        (("context", "timestamp"), "yesterday"),
        (("subject", "id"), None),
        (("subject", "content"), "text"),
        (("subject",), None),
    ],
    ids=[
        "no-version",
        "empty-id",
        "no-source",
        "not-cdevents",
        "no-type-version",
        "bad-timestamp",
        "no-subject-id",
        "content-not-object",
        "no-subject",
    ],
)
def test_invalid_cdevents_are_malformed(path: tuple[str, ...], value: object) -> None:
    with pytest.raises(MalformedPayload, match="not a CDEvent payload"):
        cdevents.parse(fx.load("cdevents", "change_merged", body=_with(path, value)))


def test_junk_body_is_malformed() -> None:
    with pytest.raises(MalformedPayload):
        cdevents.parse(fx.load("cdevents", "change_merged", body=b"\x00junk"))
