"""Benchmark: the two maintained JSON-schema libraries on PyPI, on the CDEvents 0.4.1 schemas.

`fastjsonschema` (generates Python code per schema, what gitops-receiver uses) against
`jsonschema` (the reference implementation, not a dependency: install it into the venv for
this script only). Both get the same schemas (receiver/sources/cdevents_schemas/), the same
type lookup and the same dropping of undeclared fields (receiver/sources/cdevents.py), so the
cases compare the validators only. Correctness: the bodies of tests/unit/sources/test_cdevents.py
whose verdicts were checked against Flux's own reader (cdevents/sdk-go v0.5.0); jsonschema runs
with its format checker, as a caller would. Speed: compile time per event schema, and
validation time of valid events of three types. A script that prints figures, not a test.

    .venv/bin/pip install jsonschema==4.26.0   # once, outside the lock
    .venv/bin/python benchmarks/cdevents_schema_compare.py [--rounds 2000]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import fastjsonschema
import jsonschema
from referencing import Registry, Resource

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from receiver.errors import MalformedPayload
from receiver.sources import cdevents
from tests.unit.sources import test_cdevents as cases

Check = Callable[[str, Any], bool]


def parametrized(test: Any) -> list[Any]:
    (mark,) = [m for m in test.pytestmark if m.name == "parametrize"]
    return list(mark.args[1])


def corpus() -> list[tuple[Any, bool]]:
    """(decoded body, Flux accepts it) for every body of the unit tests."""
    accepted = parametrized(cases.test_valid_events_of_several_types_are_signals)
    refused = [
        body
        for body, _ in parametrized(
            cases.test_invalid_cdevents_name_the_type_and_the_first_violation
        )
    ]
    return [(json.loads(b), True) for b in accepted] + [(json.loads(b), False) for b in refused]


def fast_compile(name: str) -> Callable[[Any], Any]:
    return fastjsonschema.compile(
        cdevents.schema_document(cdevents.SCHEMA_BASE + name),
        handlers={"https": cdevents.schema_document},
        use_default=False,
    )


def reference_compile(name: str, registry: Registry) -> Any:
    schema = cdevents.schema_document(cdevents.SCHEMA_BASE + name)
    cls = jsonschema.validators.validator_for(schema)
    return cls(schema, registry=registry, format_checker=cls.FORMAT_CHECKER)


def registry() -> Registry:
    """$refs resolve to the shipped files, as fastjsonschema's handler does."""
    return Registry(retrieve=lambda uri: Resource.from_contents(cdevents.schema_document(uri)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2000)
    rounds = parser.parse_args().rounds
    names = sorted(cdevents.schema_names())
    reg = registry()

    start = time.perf_counter()
    fast = {n: fast_compile(n) for n in names}
    fast_ms = (time.perf_counter() - start) * 1000 / len(names)
    start = time.perf_counter()
    reference = {n: reference_compile(n, reg) for n in names}
    reference_ms = (time.perf_counter() - start) * 1000 / len(names)

    def fast_ok(name: str, body: Any) -> bool:
        try:
            fast[name](body)
        except fastjsonschema.JsonSchemaValueException:
            return False
        return True

    def reference_ok(name: str, body: Any) -> bool:
        return bool(reference[name].is_valid(body))

    def verdict(check: Check, body: Any) -> bool:
        try:
            name = cdevents.schema_name(body["context"].get("type"))
        except MalformedPayload:
            return False
        if body["context"].get("schemaUri") is not None:
            return False
        return check(name, cdevents.declared_only(body, cdevents.validator(name)[0]))

    bodies = corpus()
    print(f"{len(bodies)} bodies with Flux's verdict, {len(names)} event schemas\n")
    wrong = {
        label: [b["context"].get("type") for b, ok in bodies if verdict(check, b) != ok]
        for label, check in (("fastjsonschema", fast_ok), ("jsonschema", reference_ok))
    }
    right = {label: f"{len(bodies) - len(w)}/{len(bodies)}" for label, w in wrong.items()}
    print("| | fastjsonschema | jsonschema |\n|---|---|---|")
    print(f"| decided as Flux decides | {right['fastjsonschema']} | {right['jsonschema']} |")
    print(f"| compile, per event schema | {fast_ms:.1f} ms | {reference_ms:.2f} ms |")
    valid = [b for b, ok in bodies[:3] if ok]
    for body in valid:
        name = cdevents.schema_name(body["context"]["type"])
        slim = cdevents.declared_only(body, cdevents.validator(name)[0])
        figures = []
        for check in (fast_ok, reference_ok):
            start = time.perf_counter()
            for _ in range(rounds):
                check(name, slim)
            figures.append((time.perf_counter() - start) * 1e6 / rounds)
        print(f"| validate a valid `{name}` | {figures[0]:.1f} µs | {figures[1]:.1f} µs |")
    for label, types in wrong.items():
        if types:
            print(f"\n{label} decides these unlike Flux: {types}")


if __name__ == "__main__":
    main()
