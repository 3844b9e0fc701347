"""The contract every registered source keeps, checked over `registry.SOURCES` and its fixtures.

A new source is covered here by being registered and given fixtures in
`tests/fixtures/<type name>/`: a recorded delivery verifies and parses into an event of that
source; a flipped body byte fails verification when the delivery is signed; dropping the
credential headers fails it; a junk body for a push is a `MalformedPayload`; and random
headers and bodies only ever raise `RequestRejected` subclasses.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from receiver.errors import AuthenticationFailed, MalformedPayload, RequestRejected
from receiver.events import GitPush, Ignored, ImagePush, Signal
from receiver.sources import registry
from receiver.sources.base import RawDelivery, Source
from tests.support import signed_fixtures as fx

TYPE_NAMES = sorted(registry.SOURCES)
CASES = [
    pytest.param(name, event, id=f"{name}/{event}")
    for name in TYPE_NAMES
    for event in fx.events(name)
]
SIGNED_CASES = [case for case in CASES if fx.signs_body(*case.values)]  # type: ignore[arg-type]
CREDENTIAL_CASES = [case for case in CASES if fx.credential_headers(*case.values)]  # type: ignore[arg-type]


def _is_push(name: str, event: str) -> bool:
    source = registry.get(name)
    assert source is not None
    return any(isinstance(e, GitPush | ImagePush) for e in source.parse(fx.load(name, event)))


PUSH_CASES = [case for case in CASES if _is_push(*case.values)]  # type: ignore[arg-type]


def _source(name: str) -> Source:
    source = registry.get(name)
    assert source is not None
    return source


@pytest.mark.parametrize("name", TYPE_NAMES)
def test_every_registered_source_has_fixtures(name: str) -> None:
    assert fx.events(name), f"add tests/fixtures/{name}/<event>.json and <event>.headers"


@pytest.mark.parametrize("name", TYPE_NAMES)
def test_registry_key_is_the_type_name(name: str) -> None:
    assert registry.SOURCES[name].type_name == name


@pytest.mark.parametrize(("name", "event"), CASES)
def test_recorded_delivery_verifies_and_parses(name: str, event: str) -> None:
    source = _source(name)
    delivery = fx.load(name, event)
    source.verify(delivery, fx.credentials(name))
    parsed = source.parse(delivery)
    assert isinstance(parsed, tuple) and parsed, "parse returns a tuple of at least one event"
    for event in parsed:
        assert isinstance(event, GitPush | ImagePush | Signal | Ignored)
        assert event.source == name


@pytest.mark.parametrize(("name", "event"), SIGNED_CASES)
def test_flipped_body_byte_fails_verification(name: str, event: str) -> None:
    signed = fx.load(name, event)
    tampered = RawDelivery(headers=signed.headers, body=fx.flip_byte(signed.body))
    with pytest.raises(AuthenticationFailed):
        _source(name).verify(tampered, fx.credentials(name))


@pytest.mark.parametrize(("name", "event"), CREDENTIAL_CASES)
def test_missing_credential_headers_fail_verification(name: str, event: str) -> None:
    stripped = fx.without(fx.load(name, event), *fx.credential_headers(name, event))
    with pytest.raises(AuthenticationFailed) as caught:
        _source(name).verify(stripped, fx.credentials(name))
    assert fx.credentials(name).token.decode() not in caught.value.message


@pytest.mark.parametrize(("name", "event"), PUSH_CASES)
def test_junk_body_of_a_push_is_malformed(name: str, event: str) -> None:
    source = _source(name)
    for junk in (b"", b"{", b"[]", b"\xff\xfe\x00"):
        with pytest.raises(MalformedPayload):
            source.parse(fx.load(name, event, body=junk))
    # A JSON object that is not the vendor's payload may be refused or taken as a bare signal,
    # never invented into a push.
    try:
        unrelated = source.parse(fx.load(name, event, body=b'{"unrelated": true}'))
    except MalformedPayload:
        return
    assert not any(isinstance(event, GitPush | ImagePush) for event in unrelated)


def _json_values() -> st.SearchStrategy[Any]:
    scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
    return st.recursive(
        scalars,
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
        max_leaves=12,
    )


def _mutated_fixture(name: str) -> st.SearchStrategy[bytes]:
    """A recorded body with one top-level key replaced by a random JSON value."""
    recorded = [json.loads(fx.delivery_fixtures.body(name, e) or b"{}") for e in fx.events(name)]
    objects = [payload for payload in recorded if isinstance(payload, dict) and payload]
    if not objects:
        return st.just(b"{}")

    @st.composite
    def mutate(draw: st.DrawFn) -> bytes:
        payload = dict(draw(st.sampled_from(objects)))
        key = draw(st.sampled_from(sorted(payload)))
        payload[key] = draw(_json_values())
        return json.dumps(payload).encode()

    return mutate()


# Header values include lone surrogates: aiohttp keeps undecodable header bytes that way.
_HEADER_VALUES = st.text(alphabet=st.characters(codec=None), max_size=80)


def _headers(name: str) -> st.SearchStrategy[dict[str, str]]:
    names = {"authorization", "content-type", "ce-type"}
    for event in fx.events(name):
        names.update(fx.template(name, event))
    recorded = [fx.load(name, event).headers for event in fx.events(name)]
    random_headers = st.dictionaries(st.sampled_from(sorted(names)), _HEADER_VALUES, max_size=6)
    if not recorded:
        return random_headers

    @st.composite
    def recorded_with_noise(draw: st.DrawFn) -> dict[str, str]:
        headers = dict(draw(st.sampled_from(recorded)))
        headers.update(draw(random_headers))
        return headers

    return random_headers | recorded_with_noise()


@pytest.mark.parametrize("name", TYPE_NAMES)
def test_random_input_only_raises_request_rejected(name: str) -> None:
    source = _source(name)
    creds = fx.credentials(name)
    bodies = (
        st.binary(max_size=200)
        | _json_values().map(lambda v: json.dumps(v).encode())
        | _mutated_fixture(name)
    )

    @settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(headers=_headers(name), body=bodies)
    def check(headers: dict[str, str], body: bytes) -> None:
        delivery = RawDelivery(headers=headers, body=body)
        source.event_name(delivery)  # never raises at all
        with contextlib.suppress(RequestRejected):
            source.verify(delivery, creds)
        with contextlib.suppress(RequestRejected):
            assert source.parse(delivery), "parse never returns an empty tuple"

    check()


@pytest.mark.parametrize("name", TYPE_NAMES)
def test_deeply_nested_body_is_rejected_not_crashing(name: str) -> None:
    source = _source(name)
    for event in fx.events(name):
        deep = b"[" * 200_000 + b"]" * 200_000
        with contextlib.suppress(RequestRejected):
            source.parse(fx.load(name, event, body=deep))
