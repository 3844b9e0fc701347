"""Local evaluation of equality-based label selectors."""

from __future__ import annotations

import pytest

from receiver.errors import SelectorError
from receiver.routing.selectors import matches

LABELS = {"team": "a", "tier": "web"}


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        (None, True),
        ("", True),
        ("team=a", True),
        ("team==a", True),
        ("team=b", False),
        ("team!=b", True),
        ("team!=a", False),
        ("tier", True),
        ("owner", False),
        ("!owner", True),
        ("!team", False),
        ("team=a, tier=web", True),
        ("team=a,tier=db", False),
    ],
)
def test_equality_selectors(selector: str | None, expected: bool) -> None:
    assert matches(selector, LABELS) is expected


def test_set_based_selectors_are_refused_clearly() -> None:
    with pytest.raises(SelectorError, match="set-based"):
        matches("team in (a,b)", LABELS)
