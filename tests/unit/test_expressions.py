"""CEL as Flux evaluates it: the expressions of Flux's Receiver documentation, the extension
functions Flux's environment has, and its error semantics (compile vs evaluation errors)."""

from __future__ import annotations

from typing import Any

import pytest

from receiver.errors import ExpressionFailed, InvalidExpression
from receiver.expressions import bind, compile_expression

RES = {
    "apiVersion": "image.toolkit.fluxcd.io/v1",
    "kind": "ImageRepository",
    "metadata": {
        "name": "hello-world",
        "namespace": "apps",
        "labels": {"registry": "gar", "environment": "production"},
        "annotations": {"update-image": "hello-world", "source-repository": "my-org/repo-a"},
    },
}
# The body of Flux's documented GAR example.
REQ = {
    "action": "INSERT",
    "digest": "us-east1-docker.pkg.dev/my-project/my-repo/hello-world@sha256:6ec128e26cd5",
    "tag": "us-east1-docker.pkg.dev/my-project/my-repo/hello-world:1.1",
}
CLAIMS = {
    "iss": "https://token.actions.githubusercontent.com",
    "repository": "my-org/repo-a",
    "repository_owner": "my-org",
    "ref": "refs/heads/main",
    "environment": "production",
}
FILTER_VARIABLES = ("res", "req")


def check(source: str, *, variables: tuple[str, ...] = FILTER_VARIABLES, **data: Any) -> bool:
    values = {"res": RES, "req": REQ, "claims": CLAIMS} | data
    context = bind({name: values[name] for name in variables})
    return compile_expression(source, variables=variables).evaluate_bool(context)


@pytest.mark.parametrize(
    ("source", "variables", "expected"),
    [
        ("req.tag.contains(res.metadata.name)", FILTER_VARIABLES, True),
        (
            "has(res.metadata.annotations) && req.tag.split('/').last().value()"
            """.split(":").first().value() == res.metadata.annotations['update-image']""",
            FILTER_VARIABLES,
            True,
        ),
        (
            "claims.repository == res.metadata.annotations['source-repository']",
            ("res", "req", "claims"),
            True,
        ),
        ("res.metadata.labels['environment'] == 'production'", FILTER_VARIABLES, True),
        ("claims.repository_owner == 'my-org'", ("claims",), True),
        (
            "claims.ref == 'refs/heads/main' && claims.environment == 'production'",
            ("claims",),
            True,
        ),
    ],
    ids=["gar-tag", "gar-annotation", "oidc-claims", "per-resource", "oidc-org", "oidc-env"],
)
def test_expressions_from_fluxs_receiver_documentation(
    source: str, variables: tuple[str, ...], expected: bool
) -> None:
    assert check(source, variables=variables) is expected


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("req.tag.lowerAscii().startsWith('us-east1')", True),
        ("'ABC'.lowerAscii() == 'abc' && 'abc'.upperAscii() == 'ABC'", True),
        ("'a,b,c'.split(',', 2) == ['a', 'b,c']", True),
        ("'hello'.substring(1, 3) == 'el' && 'hello'.charAt(1) == 'e'", True),
        ("'hello'.indexOf('l') == 2 && 'hello'.lastIndexOf('l') == 3", True),
        ("'  x '.trim() == 'x' && 'abc'.reverse() == 'cba'", True),
        ("['a', 'b'].join('-') == 'a-b' && 'aaa'.replace('a', 'b', 2) == 'bba'", True),
        ("strings.quote('a\"b') == '\"a\\\\\"b\"'", True),
        ("sets.contains(['a', 'b'], ['b']) && sets.intersects([1], [1, 2])", True),
        ("sets.equivalent([1, 2], [2, 1]) && !sets.contains([1], [2])", True),
        ("base64.encode(b'hi') == 'aGk=' && base64.decode('aGk=') == b'hi'", True),
        ("[].first().orValue('none') == 'none' && [1, 2].last().value() == 2", True),
        ("req.commits.exists(c, c.id == 'b')", True),
        ("req.count > 2 && req.count == 3", True),  # JSON numbers are doubles: cross-type
        ("has(req.missing)", False),
        ("true || req.missing == 'x'", True),
    ],
)
def test_extension_functions_and_semantics_of_fluxs_environment(
    source: str, expected: bool
) -> None:
    req = REQ | {"commits": [{"id": "a"}, {"id": "b"}], "count": 3.0}
    assert check(source, req=req) is expected


@pytest.mark.parametrize(
    ("source", "variables", "problem"),
    [
        ("claims.repository == 'x'", FILTER_VARIABLES, "undeclared reference to 'claims'"),
        ("req.tag.noSuchFunction()", FILTER_VARIABLES, "undeclared reference to 'noSuchFunction'"),
        ("req.tag ==", FILTER_VARIABLES, "failed to parse"),
        ("vars.owner == 'x'", ("claims",), "undeclared reference to 'vars'"),
    ],
)
def test_invalid_expressions_are_refused_when_compiled(
    source: str, variables: tuple[str, ...], problem: str
) -> None:
    with pytest.raises(InvalidExpression, match=problem):
        compile_expression(source, variables=variables)


@pytest.mark.parametrize(
    ("source", "problem"),
    [
        ("req.missing == 'x'", "failed to evaluate the CEL expression"),
        ("req.tag", "as boolean"),
        ("1 + 'a' == 2", "failed to evaluate the CEL expression"),
        ("base64.decode('%%%') == b''", "failed to evaluate the CEL expression"),
    ],
    ids=["no-such-key", "not-a-boolean", "type-mismatch", "extension-error"],
)
def test_evaluation_errors_fail_the_request(source: str, problem: str) -> None:
    with pytest.raises(ExpressionFailed, match=problem):
        check(source)
