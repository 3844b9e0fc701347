"""Benchmark: the two maintained CEL libraries on PyPI, on Flux's semantics and on speed.

`common-expression-language` (cel-rust bindings, what gitops-receiver uses) against
`cel-python` (pure Python, not a dependency: install it into the venv for this script only).
Both get the same extension functions (receiver/expressions.py's EXTENSIONS), so the cases
compare the evaluators, not our helpers. Correctness: the expressions of Flux's Receiver
documentation and the semantics of Flux's cel-go environment (cross-type numeric comparison,
missing keys are errors, short-circuit over errors, optional values, homogeneous literals,
undeclared variables refused before evaluation). Speed: compile time, and evaluation time
per object of a `resourceFilter` with a real 8 KB GitHub push bound once per request.
A script that prints figures, not a test.

    .venv/bin/pip install cel-python==0.5.0   # once, outside the lock
    .venv/bin/python benchmarks/cel_compare.py [--rounds 2000]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cel

from receiver import expressions

PUSH = Path(__file__).resolve().parents[1] / "tests/fixtures/corpus/github/push.4.json"
RES = {
    "apiVersion": "image.toolkit.fluxcd.io/v1",
    "kind": "ImageRepository",
    "metadata": {
        "name": "hello-world",
        "labels": {"environment": "production"},
        "annotations": {"update-image": "hello-world"},
    },
}
TAG = "us-east1-docker.pkg.dev/my-project/my-repo/hello-world:1.1"
# (expression, expected): True/False, "error" (evaluation error), "invalid" (refused before
# any evaluation, as Flux's compile step refuses it).
CASES: list[tuple[str, object]] = [
    ("req.tag.contains(res.metadata.name)", True),
    (
        "has(res.metadata.annotations) && req.tag.split('/').last().value()"
        ".split(':').first().value() == res.metadata.annotations['update-image']",
        True,
    ),
    ("res.metadata.labels['environment'] == 'production'", True),
    ("req.total > 2", True),
    ("req.total == 3", True),
    ("req.missing == 'x'", "error"),
    ("has(req.missing)", False),
    ("true || req.missing == 'x'", True),
    ("req.missing == 'x' || true", True),
    ("[1, 2].last().orValue(0) == 2", True),
    ("optional.none().orValue(1) == 1", True),
    ("req.ref.matches('^refs/heads/')", True),
    ("req.commits.exists(c, c.id.startsWith('6113728f'))", True),
    ("int(req.total) + 1 == 4", True),
    ("1 + 1.0 == 2.0", "error"),
    ("claims.sub == 'x'", "invalid"),
    ("[1, 'a'].size() == 2", "invalid"),
    ("req.ref ==", "invalid"),
]


def request() -> dict[str, Any]:
    body = json.loads(PUSH.read_text())
    return body | {"tag": TAG, "total": 3.0}


class RustCel:
    name = "common-expression-language"

    def compile(self, source: str) -> Any:
        return expressions.compile_expression(source, variables=("res", "req"))

    def bind(self, req: dict[str, Any]) -> Any:
        return expressions.bind({"req": req})

    def evaluate(self, program: Any, context: Any, res: dict[str, Any]) -> Any:
        context.add_variable("res", res)
        return program.evaluate(context)


class PyCel:
    name = "cel-python"

    def __init__(self) -> None:
        import celpy  # optional: only for this comparison

        self.celpy = celpy
        self.env = celpy.Environment()
        self.functions: dict[str, Callable[..., Any]] = {
            name: self._wrap(function) for name, function in expressions.EXTENSIONS.items()
        }

    def _wrap(self, function: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any) -> Any:
            value = function(*args)
            if isinstance(value, cel.OptionalValue):
                raise self.celpy.CELEvalError("optional values are not supported")
            return self.celpy.json_to_cel(value)

        return call

    def compile(self, source: str) -> Any:
        return self.env.program(self.env.compile(source), functions=self.functions)

    def bind(self, req: dict[str, Any]) -> Any:
        return {"req": self.celpy.json_to_cel(req)}

    def evaluate(self, program: Any, context: Any, res: dict[str, Any]) -> Any:
        value = program.evaluate(context | {"res": self.celpy.json_to_cel(res)})
        if isinstance(value, Exception):
            raise value
        return value


def outcome(library: Any, source: str, req: dict[str, Any]) -> object:
    try:
        program = library.compile(source)
    except Exception:  # any refusal counts as "invalid"
        return "invalid"
    try:
        value = library.evaluate(program, library.bind(req), RES)
    except Exception:  # any failure counts as "error"
        return "error"
    return bool(value) if isinstance(value, bool) or type(value).__name__ == "BoolType" else value


def timed_us(function: Callable[[], object], rounds: int) -> float:
    samples = []
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(rounds):
            function()
        samples.append((time.perf_counter() - start) / rounds * 1e6)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2000)
    args = parser.parse_args()
    libraries: list[Any] = [RustCel()]
    try:
        libraries.append(PyCel())
    except ImportError:
        print("cel-python is not installed: .venv/bin/pip install cel-python==0.5.0")
    req = request()
    for library in libraries:
        report(library, req, rounds=args.rounds)


def report(library: Any, req: dict[str, Any], *, rounds: int) -> None:
    wrong = []
    for expression, expected in CASES:
        got = outcome(library, expression, req)
        if got != expected:
            wrong.append(f"    {expression!r}: {got!r}, Flux: {expected!r}")
    print(f"{library.name}: {len(CASES) - len(wrong)}/{len(CASES)} cases as Flux decides")
    for line in wrong:
        print(line)
    source = CASES[0][0]
    program = library.compile(source)
    context = library.bind(req)
    compile_us = timed_us(lambda: library.compile(source), max(rounds // 10, 1))
    bind_us = timed_us(lambda: library.bind(req), max(rounds // 10, 1))
    eval_us = timed_us(lambda: library.evaluate(program, context, RES), rounds)
    print(
        f"  compile {compile_us:.1f} us; bind an {len(json.dumps(req))}-byte request "
        f"{bind_us:.1f} us; evaluate per object {eval_us:.1f} us"
    )


if __name__ == "__main__":
    main()
