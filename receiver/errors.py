"""The project's exception tree, the whole of it: every exception gitops-receiver raises on
purpose is defined here and derives from `ReceiverError`.

Errors say what went wrong, never which HTTP status it is: the webhook edge
(`http/server.py`) alone maps them to answers. `RequestRejected` messages are shown to the
sender, so they never carry a secret, token, signature or body. Pure modules import only this
module, so the tree costs them nothing.

    ReceiverError
      RequestRejected          a delivery refused; message safe to show the sender
        UnknownHook              no receiver or endpoint at the path
        PayloadTooLarge          body over the cap
        AuthenticationFailed     signature, token or ID token does not check out
          UnknownSigningKey        ID token signed by a key id not (yet) in the key set
        MalformedPayload         authentic but unreadable body
        ReceiverNotReady         receiver suspended or not Ready, endpoint Secret missing
        FilterFailed             a Receiver's CEL filter failed on this delivery
      ResourcesUnreadable      a filtered Receiver's objects could not be read (may retry)
        BodyTimeout              the body did not arrive within the body time limit
        UnsupportedEncoding      a compressed body (signatures cover the bytes sent)
        RateLimited              the client is over its request rate
      BodiesInFlight           the budget of bytes held across connections is spent (may retry)
      QueueRefused             the reconcile queue takes no request now (sender may retry)
        QueueFull
        QueueDraining
      JwksUnavailable          no OIDC signing keys could be loaded (sender may retry)
      ReceiverSpecInvalid      a Receiver spec Flux refuses (generic-oidc rules): not Ready
      ExpressionError          a CEL expression of a Receiver (`expressions.py`)
        InvalidExpression        does not compile: the Receiver is not Ready
        ExpressionFailed         failed on one request's data
      KubeError                a Kubernetes API call failed (`kube/client.py`)
        TargetNotFound           404: logged and counted, never retried
        ResourceExpired          410: list again
        KubeUnavailable          429, 5xx, connection: retried
        KubeRejected             other 4xx: configuration problem, not retried
          KubeConflict             409: changed since read, or exists already
        KubeErrorFromEvent       an ERROR event inside a watch stream
      ForgeError               a forge's commit-status API failed (`status/`)
        ForgeRateLimited ForgeRejected ForgeUnavailable
      RemoteError              `git ls-remote` failed (`poller/runner.py`)
        RemoteAuthFailed RemoteNotFound RemoteTimeout RemoteUnreachable
      CredentialsInvalid       a poller git Secret that makes no usable credential
      LsRemoteMalformed        `git ls-remote` printed something unreadable
      UnsupportedUrl           a git URL the poller will not hand to git
      ConstraintError          a semver range Masterminds would refuse
      SelectorError            a label selector this project cannot evaluate
      UnknownKind              a reference to a kind gitops-receiver does not reconcile
      ConfigError              bad configuration at start-up
"""

from __future__ import annotations

from pydantic import ValidationError


class ReceiverError(Exception):
    """Base of every error raised on purpose by gitops-receiver."""


# --- a delivery refused ------------------------------------------------------------------------


class RequestRejected(ReceiverError):
    """A delivery refused; `message` is safe to show the sender."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class UnknownHook(RequestRejected):
    """No Receiver or discovery endpoint at the path."""


class PayloadTooLarge(RequestRejected):
    """The body is over `max_body_bytes`."""


class AuthenticationFailed(RequestRejected):
    """The delivery's signature, token or ID token is missing or wrong."""


class UnknownSigningKey(AuthenticationFailed):
    """The ID token's `kid` is not in the key set: the caller may refresh the keys, retry once."""

    def __init__(self, message: str, *, kid: str) -> None:
        super().__init__(message)
        self.kid = kid


class MalformedPayload(RequestRejected):
    """The delivery is authentic but its body cannot be read."""


class ReceiverNotReady(RequestRejected):
    """The receiver is suspended or not Ready, or the endpoint's Secret is missing."""


class BodyTimeout(RequestRejected):
    """The body did not arrive within `limits.body_timeout_s` of the headers."""


class UnsupportedEncoding(RequestRejected):
    """A `Content-Encoding` other than identity: forges sign the bytes they send and none
    compresses its deliveries, so a compressed body is refused rather than inflated."""


class RateLimited(RequestRejected):
    """The client is over `limits.client_rate_per_s`; it may try again in `retry_after_s`."""

    def __init__(self, message: str, *, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


# --- the service cannot take a delivery now ---------------------------------------------------


class FilterFailed(RequestRejected):
    """A Receiver's CEL filter failed on this delivery (the objects it accepted are queued)."""


class ResourcesUnreadable(ReceiverError):
    """A filtered Receiver's objects could not be read from the API server (sender may retry)."""


class BodiesInFlight(ReceiverError):
    """Taking this body would hold more than `limits.max_body_bytes_in_flight` bytes of bodies
    across all connections; nothing was read, the sender may retry."""


class QueueRefused(ReceiverError):
    """The reconcile queue takes no request now; nothing was queued, the sender may retry."""


class QueueFull(QueueRefused):
    """The queue holds `queue_size` requests already."""


class QueueDraining(QueueRefused):
    """The service is shutting down."""


class JwksUnavailable(ReceiverError):
    """No OIDC signing keys could be loaded: the sender should retry later (Pub/Sub does)."""


class ReceiverSpecInvalid(ReceiverError):
    """A Receiver spec Flux refuses (`ValidationFailed`): the Receiver is not Ready."""


class ExpressionError(ReceiverError):
    """A CEL expression (resourceFilter, filter, OIDC variable or validation) failed."""


class InvalidExpression(ExpressionError):
    """The expression does not compile: the Receiver is not Ready (`InvalidCELExpression`)."""


class ExpressionFailed(ExpressionError):
    """The expression failed on one request's data (no such key, not a boolean...)."""


# --- the Kubernetes API ------------------------------------------------------------------------


class KubeError(ReceiverError):
    """A Kubernetes API call failed; `kube/client.py` raises these from HTTP failures."""


class TargetNotFound(KubeError):
    """The object to patch does not exist (404): logged and counted, never retried."""


class ResourceExpired(KubeError):
    """410 Gone: the resourceVersion is too old; the caller must list again."""


class KubeUnavailable(KubeError):
    """429, 5xx or a connection error: retried with backoff."""

    def __init__(self, message: str, *, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class KubeRejected(KubeError):
    """Any other 4xx (403 forbidden, 422 invalid): a configuration problem, not retried."""


class KubeConflict(KubeRejected):
    """409: the object changed since it was read (or already exists); read it again."""


class KubeErrorFromEvent(KubeError):
    """An ERROR event other than 410 inside a watch stream."""


# --- forges' commit-status APIs ----------------------------------------------------------------


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


# --- the poller's git remotes ------------------------------------------------------------------


class RemoteError(ReceiverError):
    """`git ls-remote` failed; `outcome` is the metric label (never the remote's own text)."""

    outcome = "failed"


class RemoteAuthFailed(RemoteError):
    outcome = "auth_failed"


class RemoteNotFound(RemoteError):
    outcome = "not_found"


class RemoteTimeout(RemoteError):
    outcome = "timeout"


class RemoteUnreachable(RemoteError):
    outcome = "unreachable"


class CredentialsInvalid(ReceiverError):
    """The Secret is missing, or its keys do not make a usable credential for the URL's scheme."""


class LsRemoteMalformed(ReceiverError):
    """`git ls-remote` printed a line that is not `<sha>\\t<ref>` nor `ref: <target>\\tHEAD`."""


class UnsupportedUrl(ReceiverError):
    """The GitRepository URL has a scheme the poller will not hand to git (ext::, file://, ...)."""


# --- what objects ask for ----------------------------------------------------------------------


class ConstraintError(ReceiverError):
    """A `spec.ref.semver` range Masterminds would refuse; the message names the bad part."""


class SelectorError(ReceiverError):
    """A label selector this project cannot evaluate."""


class UnknownKind(ReceiverError):
    """A reference names a kind gitops-receiver does not reconcile."""


class ConfigError(ReceiverError):
    """Bad configuration at start-up: one clear line, then a non-zero exit."""


def first_validation_problem(exc: ValidationError, *, root: str) -> str:
    """The first problem pydantic found, as `field.path: message` (`root` when at the top)."""
    error = exc.errors()[0]
    where = ".".join(str(part) for part in error["loc"]) or root
    return f"{where}: {error['msg']}"
