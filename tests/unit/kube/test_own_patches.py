"""OwnPatches: the stamps of our reconcile patches, each consumed once by its echo."""

from __future__ import annotations

from typing import Any

from receiver.events import ObjectRef
from receiver.kube.patching import REQUESTED_AT, OwnPatches


def ref(name: str, namespace: str = "team") -> ObjectRef:
    return ObjectRef("source.toolkit.fluxcd.io/v1", "GitRepository", namespace, name)


def state(stamp: str | None) -> dict[str, Any]:
    annotations = {} if stamp is None else {REQUESTED_AT: stamp, "other": "x"}
    return {"metadata": {"name": "app", "namespace": "team", "annotations": annotations}}


def consume(own: OwnPatches, obj: dict[str, Any], *, kind: str = "GitRepository") -> bool:
    return own.consume(kind=kind, namespace="team", name="app", obj=obj)


def test_the_first_state_with_our_stamp_is_the_echo_and_only_once() -> None:
    own = OwnPatches()
    own.expect(ref("app"), "t2")
    assert not consume(own, state("t1"))  # a state from before our patch
    assert not consume(own, state(None))
    assert consume(own, state("t2"))
    assert not consume(own, state("t2"))  # later changes keep the stamp: they are not echoes
    assert len(own) == 0


def test_kind_and_namespace_are_part_of_the_key() -> None:
    own = OwnPatches()
    own.expect(ref("app", namespace="other"), "t")
    assert not consume(own, state("t"))
    own.expect(ref("app"), "t")
    assert not consume(own, state("t"), kind="Kustomization")
    assert consume(own, state("t"))


def test_a_refused_patch_is_forgotten_and_a_newer_stamp_replaces_the_older() -> None:
    own = OwnPatches()
    own.expect(ref("app"), "t1")
    own.forget(ref("app"), "t0")  # not the stamp registered: kept
    assert len(own) == 1
    own.expect(ref("app"), "t2")
    assert not consume(own, state("t1"))
    own.forget(ref("app"), "t2")
    assert len(own) == 0


def test_stamps_whose_echo_never_comes_are_dropped_oldest_first() -> None:
    own = OwnPatches(limit=2)
    for name in ("a", "b", "app"):
        own.expect(ref(name), "t")
    assert len(own) == 2
    assert consume(own, state("t"))
    assert not own.consume(kind="GitRepository", namespace="team", name="a", obj=state("t"))
