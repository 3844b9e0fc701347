"""The project's exception tree.

Every error a caller can act on has its own type. `RequestRejected` subclasses carry the HTTP
status the webhook edge answers with; their messages are shown to the sender, so they never
carry a secret, token, signature or body.
"""

from __future__ import annotations

from pydantic import ValidationError


class ReceiverError(Exception):
    """Base of every error raised on purpose by gitops-receiver."""


class RequestRejected(ReceiverError):
    """A delivery refused with a specific HTTP status and a message safe to show the sender."""

    http_status: int = 400
    outcome: str = "rejected"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class UnknownHook(RequestRejected):
    http_status = 404
    outcome: str = "unknown_hook"


class MethodNotAllowed(RequestRejected):
    http_status = 405
    outcome: str = "method_not_allowed"


class PayloadTooLarge(RequestRejected):
    http_status = 413
    outcome: str = "too_large"


class AuthenticationFailed(RequestRejected):
    http_status = 401
    outcome: str = "unauthorized"


class MalformedPayload(RequestRejected):
    http_status = 400
    outcome: str = "malformed"


class ReceiverNotReady(RequestRejected):
    http_status = 503
    outcome: str = "not_ready"


class ServiceUnavailable(RequestRejected):
    """The service cannot take the delivery now (draining, queue full); the sender may retry."""

    http_status = 503
    outcome: str = "unavailable"


class KubeError(ReceiverError):
    """A Kubernetes API call failed; `kube/client.py` raises these from `ApiException`."""


class TargetNotFound(KubeError):
    """The object to patch does not exist (404): logged and counted, never retried."""


class KubeUnavailable(KubeError):
    """429, 5xx or a connection error: retried with backoff."""

    def __init__(self, message: str, *, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class KubeRejected(KubeError):
    """Any other 4xx (403 forbidden, 422 invalid): a configuration problem, not retried."""


class KubeConflict(KubeRejected):
    """409: the object changed since it was read (or already exists); read it again."""


class ForgeError(ReceiverError):
    """A call to a forge's API (commit statuses) failed."""


class ForgeRateLimited(ForgeError):
    def __init__(self, message: str, *, retry_after_s: float) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class ForgeRejected(ForgeError):
    """The forge refused the call for good (401, 403, 404, 422): not retried."""


class ForgeUnavailable(ForgeError):
    """5xx or a connection error: retried with backoff."""


class ConfigError(ReceiverError):
    """Bad configuration at start-up: one clear line, then a non-zero exit."""


def first_validation_problem(exc: ValidationError, *, root: str) -> str:
    """The first problem pydantic found, as `field.path: message` (`root` when at the top)."""
    error = exc.errors()[0]
    where = ".".join(str(part) for part in error["loc"]) or root
    return f"{where}: {error['msg']}"
