"""Recorded deliveries with their credentials: what the source tests verify and parse.

A `.headers` value may hold placeholders filled here from the source's credentials, so a
fixture stays valid when its body is edited: `{hmac_sha256}` / `{hmac_sha1}` (hex HMAC of the
body keyed with the token), `{basic_auth}` (base64 of `username:password`), `{token}`.
Credentials default to token `fixture-secret`, username `fixture-user`, password
`fixture-secret`; a source whose deliveries were signed with something else (precomputed
signatures) says so in `tests/fixtures/<source>/credentials.json`: `{"token": ..., "secret_data":
{...}, "now_s": ..., "oidc": {"keys": {...}, "audience": ..., "issuers": [...], "emails": [...]}}`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Mapping

from receiver.sources.base import Credentials, OidcSettings, RawDelivery
from tests.support import delivery_fixtures

FIXTURES = delivery_fixtures.FIXTURES
SECRET = b"fixture-secret"
USERNAME = b"fixture-user"
# Header names that carry a credential: dropping them must fail verification.
CREDENTIAL_HEADER_WORDS = ("signature", "authorization", "token")


def credentials(source: str) -> Credentials:
    path = FIXTURES / source / "credentials.json"
    if not path.exists():
        return Credentials(
            token=SECRET,
            secret_data={"token": SECRET, "username": USERNAME, "password": SECRET},
        )
    raw = json.loads(path.read_text())
    token = raw.get("token", SECRET.decode()).encode()
    secret_data = {key: value.encode() for key, value in raw.get("secret_data", {}).items()}
    secret_data.setdefault("token", token)
    oidc = raw.get("oidc")
    return Credentials(
        token=token,
        secret_data=secret_data,
        now_s=float(raw.get("now_s", 0.0)),
        oidc=None
        if oidc is None
        else OidcSettings(
            keys=oidc["keys"],
            audience=oidc.get("audience"),
            issuers=tuple(
                oidc.get("issuers", OidcSettings.__dataclass_fields__["issuers"].default)
            ),
            emails=tuple(oidc.get("emails", ())),
        ),
    )


def events(source: str) -> list[str]:
    """The recorded events of a source: every `<event>.json` with a `.headers` beside it."""
    folder = FIXTURES / source
    if not folder.is_dir():
        return []
    return sorted(p.stem for p in folder.glob("*.json") if p.with_suffix(".headers").exists())


def fill(headers: Mapping[str, str], *, body: bytes, creds: Credentials) -> dict[str, str]:
    """Headers with their placeholders replaced, signed over `body`."""
    username = creds.secret_data.get("username", b"")
    password = creds.secret_data.get("password", b"")
    values = {
        "{hmac_sha256}": hmac.new(creds.token, body, hashlib.sha256).hexdigest(),
        "{hmac_sha1}": hmac.new(creds.token, body, hashlib.sha1).hexdigest(),
        "{basic_auth}": base64.b64encode(username + b":" + password).decode(),
        "{token}": creds.token.decode(),
    }
    filled = {}
    for name, value in headers.items():
        for placeholder, replacement in values.items():
            value = value.replace(placeholder, replacement)
        filled[name] = value
    return filled


def template(source: str, event: str) -> dict[str, str]:
    """The `.headers` file as written, placeholders left in."""
    return delivery_fixtures.read_headers(FIXTURES / source / f"{event}.headers")


def load(source: str, event: str, *, body: bytes | None = None) -> RawDelivery:
    """The fixture signed with its source's credentials; `body` replaces the recorded one."""
    payload = delivery_fixtures.body(source, event) if body is None else body
    headers = fill(template(source, event), body=payload, creds=credentials(source))
    return RawDelivery(headers=headers, body=payload)


def load_json(source: str, event: str) -> dict[str, object]:
    value = json.loads(delivery_fixtures.body(source, event))
    assert isinstance(value, dict)
    return value


def redelivered(
    source: str, event: str, payload: Mapping[str, object], *, as_source: str | None = None
) -> RawDelivery:
    """An edited copy of a fixture's JSON, signed again (with `as_source`'s credentials)."""
    body = json.dumps(payload).encode()
    headers = fill(template(source, event), body=body, creds=credentials(as_source or source))
    return RawDelivery(headers=headers, body=body)


def without(delivery: RawDelivery, *names: str) -> RawDelivery:
    drop = {name.lower() for name in names}
    headers = {k: v for k, v in delivery.headers.items() if k not in drop}
    return RawDelivery(headers=headers, body=delivery.body, query=delivery.query)


def with_headers(delivery: RawDelivery, **headers: str) -> RawDelivery:
    merged = dict(delivery.headers)
    merged.update({name.replace("_", "-").lower(): value for name, value in headers.items()})
    return RawDelivery(headers=merged, body=delivery.body, query=delivery.query)


def credential_headers(source: str, event: str) -> list[str]:
    return [
        name
        for name in template(source, event)
        if any(word in name for word in CREDENTIAL_HEADER_WORDS)
    ]


def signs_body(source: str, event: str) -> bool:
    """True when the delivery carries a signature header, so the body is authenticated."""
    return any("signature" in name for name in template(source, event))


def flip_byte(body: bytes) -> bytes:
    middle = len(body) // 2
    return body[:middle] + bytes([body[middle] ^ 0x01]) + body[middle + 1 :]
