"""One error tree: every exception class of the package is in `receiver/errors.py`, derives from
`ReceiverError`, is named in that module's docstring; only the HTTP edge maps errors to statuses.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

import receiver
from receiver import errors
from receiver.http import server


def _exception_classes() -> list[type[BaseException]]:
    found: dict[str, type[BaseException]] = {}
    for info in pkgutil.walk_packages(receiver.__path__, prefix="receiver."):
        module = importlib.import_module(info.name)
        for _, value in inspect.getmembers(module, inspect.isclass):
            if issubclass(value, BaseException) and value.__module__.startswith("receiver."):
                found[f"{value.__module__}.{value.__qualname__}"] = value
    return list(found.values())


CLASSES = _exception_classes()


def test_the_tree_is_found() -> None:
    assert errors.ReceiverError in CLASSES and errors.QueueFull in CLASSES


@pytest.mark.parametrize("cls", CLASSES, ids=lambda cls: cls.__name__)
def test_every_exception_lives_in_errors_and_derives_from_receiver_error(
    cls: type[BaseException],
) -> None:
    assert cls.__module__ == "receiver.errors"
    assert issubclass(cls, errors.ReceiverError)
    assert not issubclass(cls, ValueError | LookupError | TypeError | RuntimeError)


@pytest.mark.parametrize("cls", CLASSES, ids=lambda cls: cls.__name__)
def test_every_exception_is_drawn_in_the_module_docstring(cls: type[BaseException]) -> None:
    assert errors.__doc__ is not None
    assert f" {cls.__name__} " in errors.__doc__ or f" {cls.__name__}\n" in errors.__doc__


def test_errors_carry_no_http_status() -> None:
    """The table in http/server.py is the only mapping from errors to statuses."""
    assert not any(hasattr(cls, "http_status") for cls in CLASSES)


@pytest.mark.parametrize(
    ("error", "answer"),
    [
        (errors.UnknownHook("no receiver"), (404, "unknown_hook")),
        (errors.PayloadTooLarge("big"), (413, "too_large")),
        (errors.AuthenticationFailed("bad signature"), (401, "unauthorized")),
        (errors.UnknownSigningKey("unknown kid", kid="k"), (401, "unauthorized")),
        (errors.MalformedPayload("junk"), (400, "malformed")),
        (errors.ReceiverNotReady("suspended"), (503, "not_ready")),
        (errors.QueueFull("full"), (503, "unavailable")),
        (errors.QueueDraining("shutting down"), (503, "unavailable")),
        (errors.JwksUnavailable("no keys"), (503, "unavailable")),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, Exception) else str(value[0]),
)
def test_the_http_edge_answers_each_refusal(error: Exception, answer: tuple[int, str]) -> None:
    assert server.answer_for(error) == answer


@pytest.mark.parametrize(
    "error",
    [
        errors.KubeUnavailable("down"),
        errors.TargetNotFound("gone"),
        errors.ForgeRejected("no"),
        errors.ConfigError("bad"),
        KeyError("x"),
    ],
    ids=lambda error: type(error).__name__,
)
def test_anything_else_reaching_the_edge_is_a_bug(error: Exception) -> None:
    assert server.answer_for(error) is None
