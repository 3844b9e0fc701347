"""What every source shares: the raw delivery, the credentials, the `Source` contract.

Pure: no I/O, no clock reads. A source verifies the raw bytes before it decodes anything;
every comparison of a secret goes through `hmac.compare_digest` (`hmac_matches`,
`token_matches`). A missing header is `AuthenticationFailed`, never `KeyError`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import parse_qs

from pydantic import BaseModel, ValidationError

from receiver.errors import AuthenticationFailed, MalformedPayload, first_validation_problem
from receiver.events import Event

HMAC_ALGORITHMS: Mapping[str, Callable[[], Any]] = {
    "sha1": hashlib.sha1,
    "sha256": hashlib.sha256,
    "sha512": hashlib.sha512,
}


@dataclass(frozen=True, slots=True)
class RawDelivery:
    """One HTTP request as the edge read it: lower-cased header names, the body read once.

    `path_token` is the `<token>` of `/webhooks/<endpoint>/<token>`, the only credential of
    senders that sign nothing (`verify_path_token`); None on every other path.
    """

    headers: Mapping[str, str]
    body: bytes
    query: Mapping[str, str] = field(default_factory=dict)
    path_token: str | None = None

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


@dataclass(frozen=True, slots=True)
class Credentials:
    """What a source may check a delivery against.

    `token` is the Secret's `token` value (may be empty: GitLab's agent uses an empty one).
    `secret_data` is the whole Secret, for sources that need more keys (basic auth).
    `now_s` and `oidc_keys` are inputs, not reads, so token-expiry checks stay pure.
    """

    token: bytes
    secret_data: Mapping[str, bytes] = field(default_factory=dict)
    now_s: float = 0.0
    oidc: OidcSettings | None = None


@dataclass(frozen=True, slots=True)
class OidcSettings:
    """Expected claims and the signing keys (JWKS `kid` -> JWK dict) for OIDC ID tokens."""

    keys: Mapping[str, Mapping[str, Any]]
    audience: str | None = None
    issuers: tuple[str, ...] = ("https://accounts.google.com", "accounts.google.com")
    emails: tuple[str, ...] = ()


Verify = Callable[[RawDelivery, Credentials], None]
"""Checks a delivery against the credentials before anything is decoded; raises
`AuthenticationFailed`."""


@dataclass(frozen=True, slots=True)
class Source:
    """A webhook sender. `type_name` is Flux's Receiver type string where Flux has one.

    `event_name` reads the sender's event type for `spec.events` (None: the sender names none).
    `verify` raises `AuthenticationFailed`; `parse` raises `MalformedPayload` and returns every
    event of the delivery, never none: one delivery can carry several pushes (Bitbucket and
    Azure DevOps ref lists, Quay tags, Harbor resources, distribution envelopes).
    `uses_token` is False for senders checked against other Secret keys (basic auth).
    """

    type_name: str
    verify: Verify
    event_name: Callable[[RawDelivery], str | None]
    parse: Callable[[RawDelivery], tuple[Event, ...]]
    uses_token: bool = True

    @property
    def authenticates_payload(self) -> bool:
        """False for senders whose only credential is a secret URL (generic, dockerhub...)."""
        return self.verify is not no_verification


def hmac_matches(*, key: bytes, body: bytes, algorithm: str, hex_digest: str) -> bool:
    """Constant-time check of a hex HMAC of `body`; unknown algorithms never match."""
    digest = HMAC_ALGORITHMS.get(algorithm.lower())
    if digest is None:
        return False
    expected = hmac.new(key, body, digest).hexdigest()
    return hmac.compare_digest(expected.encode(), _header_bytes(hex_digest.strip().lower()))


def token_matches(*, expected: bytes, given: str | bytes) -> bool:
    """Constant-time equality of a shared token."""
    given_bytes = _header_bytes(given) if isinstance(given, str) else given
    return hmac.compare_digest(expected, given_bytes)


def _header_bytes(value: str) -> bytes:
    """A header value as bytes, never raising: the edge keeps undecodable bytes as surrogates."""
    try:
        return value.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return value.encode("utf-8", "surrogatepass")


def split_signature(value: str, *, header: str) -> tuple[str, str]:
    """Split `<algo>=<hex>` as GitHub and generic-hmac send it."""
    algorithm, sep, hex_digest = value.partition("=")
    if not sep or not hex_digest:
        raise AuthenticationFailed(f"{header} is not of the form <algorithm>=<hex digest>")
    return algorithm.strip().lower(), hex_digest


def require_header(delivery: RawDelivery, name: str, *, hint: str) -> str:
    value = delivery.header(name)
    if value is None or value == "":
        raise AuthenticationFailed(f"{name} header missing: {hint}")
    return value


def verify_hmac_header(
    delivery: RawDelivery, credentials: Credentials, *, header: str, hint: str
) -> None:
    """Check an `<algo>=<hex>` HMAC header over the raw body."""
    algorithm, hex_digest = split_signature(
        require_header(delivery, header, hint=hint), header=header
    )
    if algorithm not in HMAC_ALGORITHMS:
        # Never echo what was sent: before the `=` there may be the digest itself.
        raise AuthenticationFailed(
            f"{header} uses an unsupported algorithm (use sha1, sha256 or sha512)"
        )
    if not hmac_matches(
        key=credentials.token, body=delivery.body, algorithm=algorithm, hex_digest=hex_digest
    ):
        raise AuthenticationFailed(f"{header} does not match the body: check the shared secret")


FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"


def media_type(delivery: RawDelivery) -> str:
    """The Content-Type without parameters, lower-cased ("" when absent)."""
    return (delivery.header("content-type") or "").split(";", 1)[0].strip().lower()


def json_document(delivery: RawDelivery) -> bytes:
    """The JSON document a delivery carries, as go-github's `ValidatePayload` reads it.

    GitHub (and Gitea) webhooks default to `content_type: form`: the body is then
    `application/x-www-form-urlencoded` and the JSON is its `payload` field. The signature
    is always over the raw body, so verification never calls this.
    """
    if media_type(delivery) != FORM_CONTENT_TYPE:
        return delivery.body
    try:
        fields = parse_qs(
            delivery.body.decode("ascii"),
            keep_blank_values=True,
            max_num_fields=64,
            errors="strict",
        )
    except (UnicodeDecodeError, ValueError):
        raise MalformedPayload("form-encoded body is not valid: send the payload field") from None
    values = fields.get("payload")
    if not values:
        raise MalformedPayload("form-encoded body has no payload field")
    return values[0].encode("utf-8")


def load_json_object(body: bytes) -> dict[str, Any]:
    """Decode a JSON object body, or raise `MalformedPayload` with a message for the sender."""
    try:
        value = json.loads(body)
    # ValueError: also an integer of more digits than Python converts (sys.int_info).
    except (ValueError, RecursionError) as exc:
        raise MalformedPayload(f"body is not valid JSON: {exc.__class__.__name__}") from None
    if not isinstance(value, dict):
        raise MalformedPayload("body is not a JSON object")
    return value


def event_allowed(event: str | None, allowed: tuple[str, ...]) -> bool:
    """`spec.events` semantics: empty allows all; otherwise a case-insensitive match."""
    if not allowed:
        return True
    if event is None:
        return False
    folded = event.casefold()
    return any(folded == candidate.casefold() for candidate in allowed)


def no_event(_delivery: RawDelivery) -> str | None:
    return None


def no_verification(_delivery: RawDelivery, _credentials: Credentials) -> None:
    """For types whose only credential is the secret webhook path (generic, dockerhub...)."""


def verify_path_token(delivery: RawDelivery, credentials: Credentials) -> None:
    """For senders that sign nothing (Docker Hub, Quay, ACR) on a discovery endpoint: the
    token in `/webhooks/<endpoint>/<token>` must be the endpoint Secret's, as the secret path
    is the credential of Flux's Receivers."""
    given = delivery.path_token
    if given is None or not token_matches(expected=credentials.token, given=given):
        raise AuthenticationFailed(
            "this sender signs nothing: call /webhooks/<endpoint>/<token> with the endpoint "
            "Secret's token"
        )


_Model = TypeVar("_Model", bound=BaseModel)


def parse_model(model: type[_Model], body: bytes, *, what: str) -> _Model:
    """Validate a JSON body into a vendor model, or raise `MalformedPayload` naming the field."""
    try:
        return model.model_validate_json(body)
    except ValidationError as exc:
        problem = first_validation_problem(exc, root="body")
        raise MalformedPayload(f"not a {what} payload: {problem}") from None
