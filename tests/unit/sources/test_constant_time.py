"""Secrets are compared in constant time, and only whole: planted-bug tests (issue 17).

`hmac_matches` once could have accepted a prefix of the expected digest without any test
noticing; and no behavioural test can see a secret compared with `==` instead of
`hmac.compare_digest`, so a static check reads every comparison in `receiver/`.
"""

from __future__ import annotations

import ast
import hashlib
import hmac
from pathlib import Path

import pytest

from receiver.errors import AuthenticationFailed
from receiver.sources import github
from receiver.sources.base import Credentials, RawDelivery, hmac_matches, token_matches

KEY = b"shared-secret"
BODY = b'{"ref": "refs/heads/main"}'
DIGEST = hmac.new(KEY, BODY, hashlib.sha256).hexdigest()
RECEIVER = Path(__file__).resolve().parents[3] / "receiver"


@pytest.mark.parametrize(
    "given",
    [DIGEST[:8], DIGEST[:-1], DIGEST + "0", DIGEST[1:], "", DIGEST[:32]],
    ids=["prefix-8", "all-but-last", "one-more", "suffix", "empty", "half"],
)
def test_only_the_whole_digest_matches(given: str) -> None:
    assert hmac_matches(key=KEY, body=BODY, algorithm="sha256", hex_digest=DIGEST)
    assert not hmac_matches(key=KEY, body=BODY, algorithm="sha256", hex_digest=given)


def test_a_signature_prefix_is_refused_at_the_source() -> None:
    delivery = RawDelivery(
        headers={"x-github-event": "push", "x-hub-signature-256": "sha256=" + DIGEST[:8]},
        body=BODY,
    )
    with pytest.raises(AuthenticationFailed):
        github.verify(delivery, Credentials(token=KEY))


@pytest.mark.parametrize("given", ["shared", "shared-secret-", "Shared-secret", ""])
def test_only_the_whole_token_matches(given: str) -> None:
    assert token_matches(expected=KEY, given="shared-secret")
    assert not token_matches(expected=KEY, given=given)


_REFERENCE_SUFFIXES = ("_name", "_ref", "_namespace", "_key")
_SECRET_NAME = ("secret", "token", "digest", "signature", "hmac", "password", "mac")


def _names(node: ast.AST) -> set[str]:
    """Identifiers an expression reads (variables, attributes, called functions)."""
    found: set[str] = set()
    for part in ast.walk(node):
        if isinstance(part, ast.Name):
            found.add(part.id)
        elif isinstance(part, ast.Attribute):
            found.add(part.attr)
    return found


def _secret_like(node: ast.AST) -> bool:
    if isinstance(node, ast.Constant):
        return False
    # `secret_name`, `token_ref`: what names a Secret, not what it holds.
    names = [n for n in _names(node) if not n.lower().endswith(_REFERENCE_SUFFIXES)]
    words = {word for name in names for word in name.lower().split("_")}
    return any(word in _SECRET_NAME or word.endswith(_SECRET_NAME[:3]) for word in words)


def _harmless(node: ast.AST) -> bool:
    """A constant (None, b"", a literal, an ALL_CAPS module constant), a length, or a type:
    nothing secret is compared."""
    if isinstance(node, ast.Constant):
        return True
    if isinstance(node, ast.Name | ast.Attribute):
        return (node.id if isinstance(node, ast.Name) else node.attr).isupper()
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and (node.func.id in {"len", "type", "isinstance"})
    )


def _checking(name: str) -> bool:
    """A function that checks a credential: everything it compares is treated as secret."""
    words = set(name.lower().split("_"))
    return bool(words & {"verify", "authenticate"}) or name.endswith("_matches")


def _violations(tree: ast.AST, *, in_check: bool = False) -> list[tuple[int, str]]:
    found: list[tuple[int, str]] = []
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            found.extend(_violations(node, in_check=in_check or _checking(node.name)))
            continue
        found.extend(_violations(node, in_check=in_check))
        if isinstance(node, ast.Compare):
            operands = [node.left, *node.comparators]
            for op, left, right in zip(node.ops, operands[:-1], operands[1:], strict=True):
                if isinstance(op, ast.Is | ast.IsNot) or _harmless(left) or _harmless(right):
                    continue
                if isinstance(op, ast.In | ast.NotIn):
                    # Membership of a secret in a collection (or a name in a secret mapping).
                    secret = _secret_like(left)
                else:
                    secret = in_check or _secret_like(left) or _secret_like(right)
                if secret:
                    found.append((node.lineno, ast.unparse(node)))
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in {"startswith", "endswith", "find", "index", "count"}
            and (_secret_like(node.func.value) or any(_secret_like(a) for a in node.args))
        ):
            found.append((node.lineno, ast.unparse(node)))
    return found


# Comparisons that read like secrets but compare none: (file, source text) with the reason.
ALLOWED = {
    # The text of the last warning about a forge token, so it is logged once per change.
    ("receiver/status/service.py", "self._token_warnings.get(ref) != problem"),
}


def test_every_secret_comparison_goes_through_the_constant_time_helpers() -> None:
    offenders = []
    for path in sorted(RECEIVER.rglob("*.py")):
        relative = str(path.relative_to(RECEIVER.parent))
        for line, text in _violations(ast.parse(path.read_text())):
            if (relative, text) not in ALLOWED:
                offenders.append(f"{relative}:{line}: {text}")
    assert not offenders, "compare secrets with hmac_matches/token_matches:\n" + "\n".join(
        offenders
    )


@pytest.mark.parametrize(
    "source",
    [
        "ok = token == given",
        "ok = expected_digest != sent",
        "ok = signature.startswith(prefix)",
        "ok = entry.secret_data['token'] == header",
        "ok = hmac.new(k, b, h).hexdigest() == value",
        "def token_matches(*, expected, given):\n    return expected == given",
    ],
)
def test_the_check_sees_a_planted_plain_comparison(source: str) -> None:
    assert _violations(ast.parse(source))
