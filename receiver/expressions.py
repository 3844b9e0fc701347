"""CEL expressions as Flux evaluates them (fluxcd/pkg `runtime/cel`, in notification-controller).

A Receiver's `spec.resourceFilter`, each `spec.resources[].filter`, and a generic-oidc
provider's `variables` and `validations` are CEL. Flux compiles them with declared variables
(`res`, `req`, and `claims` for generic-oidc; `claims` and `vars` for OIDC validations), the
cel-go extension libraries strings, sets and encoders, and optional types; an expression that
does not compile marks the Receiver not Ready (`InvalidCELExpression`); an evaluation error,
or a validation that does not return a boolean, fails the request.

The evaluator is `common-expression-language` (cel-rust); what cel-go's extensions add is
registered here as functions. Compiled once per Receiver generation (`compile`), evaluated per
request (`Expression.evaluate`). Pure: no I/O.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import cel

from receiver.errors import ExpressionFailed, InvalidExpression

# Namespaces of cel-go's extension functions: the evaluator reports them as variables.
_NAMESPACES = frozenset({"sets", "base64", "strings", "optional"})
# A comprehension macro binds its first argument as a variable: `list.exists(x, x > 1)`.
_MACRO_VARIABLE = re.compile(r"\.\s*(?:all|exists|exists_one|map|filter)\s*\(\s*([A-Za-z_]\w*)\s*,")
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
_ASCII_UPPER = str.maketrans("abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ")


def _index_of(text: str, sub: str, offset: int = 0) -> int:
    if offset < 0 or offset > len(text):
        raise ValueError(f"index out of range: {offset}")
    return text.find(sub, offset)


def _last_index_of(text: str, sub: str, offset: int | None = None) -> int:
    if offset is None:
        return text.rfind(sub)
    if offset < 0 or offset >= len(text):
        raise ValueError(f"index out of range: {offset}")
    return text.rfind(sub, 0, offset + len(sub))


def _char_at(text: str, index: int) -> str:
    if index < 0 or index > len(text):
        raise ValueError(f"index out of range: {index}")
    return text[index : index + 1]


def _substring(text: str, start: int, end: int | None = None) -> str:
    stop = len(text) if end is None else end
    if start < 0 or stop > len(text) or start > stop:
        raise ValueError(f"substring out of range: [{start}:{stop}]")
    return text[start:stop]


def _replace(text: str, old: str, new: str, count: int = -1) -> str:
    return text.replace(old, new, count)


def _split(text: str, separator: str, count: int = -1) -> list[str]:
    if count == 0:
        return []
    if separator == "":
        parts = list(text)
        return parts if count < 0 else [*parts[: count - 1], "".join(parts[count - 1 :])]
    return text.split(separator, count - 1 if count > 0 else -1)


def _join(items: Sequence[str], separator: str = "") -> str:
    return separator.join(items)


def _quote(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    for char, code in (("\a", "a"), ("\b", "b"), ("\f", "f"), ("\n", "n"), ("\r", "r")):
        escaped = escaped.replace(char, "\\" + code)
    escaped = escaped.replace("\t", "\\t").replace("\v", "\\v")
    return f'"{escaped}"'


def _first(items: Sequence[Any]) -> cel.OptionalValue:
    return cel.OptionalValue.of(items[0]) if items else cel.OptionalValue.none()


def _last(items: Sequence[Any]) -> cel.OptionalValue:
    return cel.OptionalValue.of(items[-1]) if items else cel.OptionalValue.none()


def _base64_decode(text: str) -> bytes:
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"base64.decode: {exc}") from None


# cel-go's ext.Strings, ext.Sets, ext.Encoders and the list part of optional types.
EXTENSIONS: Mapping[str, Callable[..., Any]] = {
    "charAt": _char_at,
    "indexOf": _index_of,
    "lastIndexOf": _last_index_of,
    "lowerAscii": lambda text: text.translate(_ASCII_LOWER),
    "upperAscii": lambda text: text.translate(_ASCII_UPPER),
    "replace": _replace,
    "split": _split,
    "substring": _substring,
    "trim": lambda text: text.strip(" \t\n\v\f\r\x85\xa0\u1680\u2000\u200a\u2028\u2029\u3000"),
    "join": _join,
    "reverse": lambda text: text[::-1],
    "strings.quote": _quote,
    "sets.contains": lambda items, subset: all(item in items for item in subset),
    "sets.equivalent": lambda a, b: all(x in b for x in a) and all(x in a for x in b),
    "sets.intersects": lambda a, b: any(x in b for x in a),
    "base64.encode": lambda data: base64.b64encode(data).decode(),
    "base64.decode": _base64_decode,
    "first": _first,
    "last": _last,
}
# Functions the evaluator has built in (CEL's standard definitions and optional types).
_BUILT_IN = frozenset(
    {
        "size", "contains", "startsWith", "endsWith", "matches", "has", "int", "uint",
        "double", "string", "bytes", "bool", "type", "dyn", "duration", "timestamp",
        "getFullYear", "getMonth", "getDayOfYear", "getDayOfMonth", "getDate", "getDayOfWeek",
        "getHours", "getMinutes", "getSeconds", "getMilliseconds", "all", "exists",
        "exists_one", "map", "filter", "max", "min", "value", "hasValue", "orValue", "or",
        "of", "none", "ofNonZeroValue",
    }
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Expression:
    """One compiled expression; `variables` are those it was checked against."""

    source: str
    variables: tuple[str, ...]
    program: cel.Program = field(repr=False, compare=False)

    def evaluate(self, context: cel.Context) -> Any:
        """The value of the expression in `context` (from `bind`); `ExpressionFailed` on any
        evaluation error (a missing key, a type mismatch, an extension function's error)."""
        try:
            return self.program.execute(context)
        except Exception as exc:  # the evaluator raises built-in types for CEL errors
            message = str(exc).split("\n", 1)[0]
            raise ExpressionFailed(
                f"failed to evaluate the CEL expression '{self.source}': {message}"
            ) from None

    def evaluate_bool(self, context: cel.Context) -> bool:
        """As Flux's `EvaluateBoolean`: any value but a boolean is an error."""
        value = self.evaluate(context)
        if not isinstance(value, bool):
            raise ExpressionFailed(f"failed to evaluate CEL expression as boolean: '{self.source}'")
        return value


def bind(variables: Mapping[str, Any]) -> cel.Context:
    """An evaluation context: the extension functions and `variables` (JSON-like values).

    Build it once per request and rebind one variable per object (`context.add_variable`):
    converting a large request body is the costly part of an evaluation.
    """
    context = cel.Context()
    for name, function in EXTENSIONS.items():
        context.add_function(name, function)
    for name, value in variables.items():
        context.add_variable(name, value)
    return context


def compile_expression(source: str, *, variables: Sequence[str]) -> Expression:
    """Parse and check `source`; `InvalidExpression` names what is wrong.

    As Flux's compile step: a syntax error, a reference to a variable that is not declared
    (`claims` outside generic-oidc) or to an unknown function is refused here, not per
    request. Flux's type checker also refuses an expression whose static type is not bool;
    without one, a non-boolean result is refused when evaluated (`evaluate_bool`).
    """
    try:
        program = cel.compile(source)
    except (ValueError, RuntimeError) as exc:
        message = str(exc).split("\n", 1)[0]
        raise InvalidExpression(
            f"failed to parse the CEL expression '{source}': {message}"
        ) from None
    references = program.references()
    bound = set(_MACRO_VARIABLE.findall(source))
    undeclared = sorted(set(references["variables"]) - set(variables) - _NAMESPACES - bound)
    if undeclared:
        raise InvalidExpression(
            f"failed to parse the CEL expression '{source}': undeclared reference to "
            f"'{undeclared[0]}'"
        )
    unknown = sorted(
        name
        for name in references["functions"]
        if name[:1].isalpha()
        and name not in _BUILT_IN
        and name not in EXTENSIONS
        and not any(f"{ns}.{name}" in EXTENSIONS for ns in _NAMESPACES)
    )
    if unknown:
        raise InvalidExpression(
            f"failed to parse the CEL expression '{source}': undeclared reference to '{unknown[0]}'"
        )
    return Expression(source=source, variables=tuple(variables), program=program)
