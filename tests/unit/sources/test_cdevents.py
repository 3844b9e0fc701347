"""CDEvents bodies are checked against the CDEvents 0.4.1 schemas shipped with the package.

The expected verdicts were checked against Flux's own reader (cdevents/sdk-go v0.5.0, `v04`
`NewFromJsonBytes` then `api.Validate`, as notification-controller v1.9.0 calls them): every
body rejected here is rejected by Flux, every body accepted here is accepted by Flux.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from receiver.errors import MalformedPayload
from receiver.events import Signal
from receiver.sources import cdevents
from receiver.sources.base import Credentials
from tests.support import signed_fixtures as fx

_DELETE = object()


def _changed(path: tuple[str, ...], value: object, *, name: str = "change_merged") -> bytes:
    payload: dict[str, Any] = copy.deepcopy(fx.load_json("cdevents", name))
    node = payload
    for key in path[:-1]:
        node = node[key]
    if value is _DELETE:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return json.dumps(payload).encode()


def _event(event_type: str, subject_type: str, content: dict[str, Any]) -> bytes:
    return json.dumps(
        {
            "context": {
                "version": "0.4.1",
                "id": "e-1",
                "source": "/ci",
                "type": event_type,
                "timestamp": "2025-05-01T10:00:00+02:00",
            },
            "subject": {"id": "s-1", "source": "/ci", "type": subject_type, "content": content},
        }
    ).encode()


def _parse(body: bytes) -> tuple[object, ...]:
    return cdevents.parse(fx.load("cdevents", "change_merged", body=body))


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
            event="dev.cdevents.artifact.published.0.2.0",
            delivery_id="0a6f1b2c-3d4e-4f50-8a6b-7c8d9e0f1a2b",
        ),
    )


@pytest.mark.parametrize(
    "body",
    [
        _event(
            "dev.cdevents.pipelinerun.finished.0.2.0",
            "pipelineRun",
            {"pipelineName": "build", "url": "https://ci.example/run/1", "outcome": "success"},
        ),
        _event(
            "dev.cdevents.service.deployed.0.2.0",
            "service",
            {"environment": {"id": "prod"}, "artifactId": "pkg:oci/podinfo@sha256%3A0b1a"},
        ),
        _event(
            "dev.cdevents.build.finished.0.2.0",
            "build",
            {"artifactId": "pkg:oci/podinfo@sha256%3A0b1a?repository_url=ghcr.io/acme/podinfo"},
        ),
        _changed(("context", "version"), "0.3.0"),  # only minLength: Flux reads any version
        _changed(("subject", "content", "note"), "dropped"),  # undeclared: Go types drop it
        _changed(("context", "producer"), "dropped"),
        _changed(("extra",), {"any": "thing"}),
        _changed(("customData",), {"any": "thing"}),
    ],
    ids=[
        "pipelinerun-finished",
        "service-deployed",
        "build-finished",
        "any-version-string",
        "undeclared-content-field",
        "undeclared-context-field",
        "undeclared-top-field",
        "custom-data",
    ],
)
def test_valid_events_of_several_types_are_signals(body: bytes) -> None:
    (event,) = _parse(body)
    assert isinstance(event, Signal) and event.source == "cdevents"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            _changed(("context", "type"), "dev.cdevents.foo.bar.0.1.0"),
            "unknown CDEvent type 'dev.cdevents.foo.bar.0.1.0': not an event of CDEvents 0.4.1",
        ),
        (
            _changed(("context", "type"), "com.example.push"),
            "not a CDEvent payload: 'com.example.push' is not a CDEvent type",
        ),
        (
            _changed(("context", "type"), _DELETE),
            "not a CDEvent payload: body.context.type must be a string",
        ),
        (
            _changed(("context", "type"), "dev.cdevents.change.merged.0.1.2"),  # spec 0.3 type
            "CDEvent 'dev.cdevents.change.merged.0.1.2' does not match the CDEvents 0.4.1 schema: "
            "body.context.type must be one of ['dev.cdevents.change.merged.0.2.0']",
        ),
        (
            _changed(("context", "type"), "dev.cdevents.change.merged.1.0.0"),
            "body.context.type must be one of ['dev.cdevents.change.merged.0.2.0']",
        ),
        (
            _changed(("context", "version"), _DELETE),
            "CDEvent 'dev.cdevents.change.merged.0.2.0' does not match the CDEvents 0.4.1 schema: "
            "body.context must contain ['version'] properties",
        ),
        (
            _changed(("subject", "id"), _DELETE),
            "body.subject must contain ['id'] properties",
        ),
        (_changed(("subject",), _DELETE), "body must contain ['subject'] properties"),
        (_changed(("context", "id"), 42), "body.context.id must be string"),
        (_changed(("context", "id"), ""), "body.context.id must be longer than or equal to 1"),
        (
            _changed(("subject", "content", "repository"), {"id": 7}),
            "body.subject.content.repository.id must be string",
        ),
        (_changed(("subject", "content"), "text"), "body.subject.content must be object"),
        (_changed(("subject", "type"), "artifact"), "body.subject.type must be one of ['change']"),
        (
            _changed(("context", "timestamp"), "yesterday"),
            "body.context.timestamp must be date-time",
        ),
        (
            _changed(("context", "timestamp"), "2025-05-01"),
            "body.context.timestamp must be date-time",
        ),
        (
            _changed(("customData",), 5),
            "body.customData must be valid exactly by one definition",
        ),
        (
            _changed(("context", "schemaUri"), "https://example.com/schema"),
            "context.schemaUri names a custom schema, which is not registered",
        ),
        (
            _event("dev.cdevents.pipelinerun.finished.0.2.0", "pipelineRun", {"outcome": 3}),
            "body.subject.content.outcome must be string",
        ),
        (
            _event("dev.cdevents.service.deployed.0.2.0", "service", {"artifactId": "pkg:x/y"}),
            "body.subject.content must contain ['environment'] properties",
        ),
    ],
    ids=[
        "unknown-type",
        "not-a-cdevents-type",
        "no-type",
        "older-spec-type-version",
        "other-major-version",
        "missing-version",
        "missing-subject-id",
        "missing-subject",
        "id-wrong-type",
        "id-empty",
        "nested-wrong-type",
        "content-not-object",
        "subject-type-of-another-event",
        "bad-timestamp",
        "date-only-timestamp",
        "custom-data-number",
        "custom-schema-uri",
        "pipelinerun-outcome-number",
        "service-deployed-without-environment",
    ],
)
def test_invalid_cdevents_name_the_type_and_the_first_violation(body: bytes, message: str) -> None:
    with pytest.raises(MalformedPayload) as raised:
        _parse(body)
    assert message in str(raised.value)


def test_spec_0_5_events_are_refused_as_flux_v1_9_does() -> None:
    """Flux v1.9 reads spec 0.4 only: a 0.5 context (`specversion`) has no `version`."""
    body = _changed(("context", "version"), _DELETE)
    body = json.dumps(
        {**json.loads(body), "context": {**json.loads(body)["context"], "specversion": "0.5.0"}}
    ).encode()
    with pytest.raises(MalformedPayload, match=r"must contain \['version'"):
        _parse(body)


def test_a_rejection_never_echoes_the_body() -> None:
    secret_looking = "sk-0123456789abcdef"
    body = _changed(("subject", "content", "repository"), {"id": 7, "source": secret_looking})
    with pytest.raises(MalformedPayload) as raised:
        _parse(body)
    assert secret_looking not in str(raised.value)


def test_a_long_type_is_named_only_in_part() -> None:
    long_type = "dev.cdevents." + "x" * 5000 + ".merged.0.2.0"
    with pytest.raises(MalformedPayload) as raised:
        _parse(_changed(("context", "type"), long_type))
    assert "unknown CDEvent type 'dev.cdevents.xxx" in str(raised.value)
    assert len(str(raised.value)) < 300


@pytest.mark.parametrize("body", [b"\x00junk", b"[1]", b'{"context": "x"}'])
def test_junk_body_is_malformed(body: bytes) -> None:
    with pytest.raises(MalformedPayload, match="not a CDEvent payload"):
        _parse(body)


def test_every_shipped_event_schema_compiles_once() -> None:
    names = cdevents.schema_names()
    assert len(names) == 46 and "change-merged-event" in names and "custom" in names
    for name in names:
        assert cdevents.validator(name) is cdevents.validator(name)
