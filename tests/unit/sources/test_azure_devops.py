"""Azure DevOps source: basic-auth checks and `git.push` ref updates."""

from __future__ import annotations

import base64

import pytest

from receiver.errors import AuthenticationFailed, MalformedPayload
from receiver.events import GitPush, Signal
from receiver.sources import azure_devops
from receiver.sources.base import Credentials, RawDelivery
from tests.support import signed_fixtures as fx

CREDS = fx.credentials("azure-devops")
ZERO = "0" * 40


def _basic(user: bytes, password: bytes) -> str:
    return "Basic " + base64.b64encode(user + b":" + password).decode()


def test_git_push_gives_one_git_push_per_ref_update() -> None:
    delivery = fx.load("azure-devops", "git_push")
    azure_devops.verify(delivery, CREDS)
    common = {
        "source": "azure-devops",
        "event": "git.push",
        "repo_urls": (
            "https://fabrikam@dev.azure.com/fabrikam/Platform/_git/fleet-infra",
            "git@ssh.dev.azure.com:v3/fabrikam/Platform/fleet-infra",
            "https://dev.azure.com/fabrikam/Platform/_git/fleet-infra",
        ),
        "default_branch": "main",
        "delivery_id": "03c164c2-8912-4d5e-8009-3707d5f83734",
        "repo_name": "Platform/fleet-infra",
    }
    after = "33b55f7cb7e7e245323987634f960cf4a6e6bc74"
    assert azure_devops.parse(delivery) == (
        GitPush(
            ref="refs/heads/main",
            before="aad331d8d3b131fa9ae03cf5e53965b51942618a",
            after=after,
            **common,
        ),  # type: ignore[arg-type]
        GitPush(ref="refs/tags/v1.4.0", before=ZERO, after=after, **common),  # type: ignore[arg-type]
    )
    assert azure_devops.event_name(delivery) == "git.push"


def test_deleted_branch() -> None:
    payload = fx.load_json("azure-devops", "git_push")
    resource = payload["resource"]
    assert isinstance(resource, dict)
    resource["refUpdates"] = [
        {
            "name": "refs/heads/old",
            "oldObjectId": "aad331d8d3b131fa9ae03cf5e53965b51942618a",
            "newObjectId": ZERO,
        }
    ]
    (push,) = azure_devops.parse(fx.redelivered("azure-devops", "git_push", payload))
    assert isinstance(push, GitPush)
    assert (push.ref, push.deleted, push.after) == ("refs/heads/old", True, None)


def test_pull_request_is_a_signal() -> None:
    delivery = fx.load("azure-devops", "pullrequest_created")
    assert azure_devops.parse(delivery) == (
        Signal(
            source="azure-devops",
            event="git.pullrequest.created",
            delivery_id="2ab4e3d3-b7a6-425e-92b1-5a9982c1269e",
        ),
    )


@pytest.mark.parametrize(
    ("authorization", "message"),
    [
        (None, "Authorization header missing"),
        (_basic(b"fixture-user", b"wrong"), "do not match"),
        (_basic(b"someone", b"fixture-secret"), "do not match"),
        (_basic(b"fixture-user", b""), "do not match"),
        ("Bearer " + base64.b64encode(b"fixture-user:fixture-secret").decode(), "not Basic"),
        ("Basic not*base64", "not valid base64"),
        ("Basic", "do not match"),
    ],
    ids=[
        "missing",
        "wrong-password",
        "wrong-user",
        "empty-password",
        "bearer",
        "bad-base64",
        "no-credentials",
    ],
)
def test_bad_authorization_fails(authorization: str | None, message: str) -> None:
    delivery = fx.without(fx.load("azure-devops", "git_push"), "authorization")
    if authorization is not None:
        delivery = fx.with_headers(delivery, authorization=authorization)
    with pytest.raises(AuthenticationFailed, match=message) as caught:
        azure_devops.verify(delivery, CREDS)
    assert "fixture-secret" not in caught.value.message


def test_scheme_is_case_insensitive() -> None:
    delivery = fx.with_headers(
        fx.load("azure-devops", "git_push"),
        authorization=_basic(b"fixture-user", b"fixture-secret").replace("Basic", "basic"),
    )
    azure_devops.verify(delivery, CREDS)


def test_secret_without_basic_auth_keys_fails_with_a_hint() -> None:
    with pytest.raises(AuthenticationFailed, match="no username/password keys"):
        azure_devops.verify(
            fx.load("azure-devops", "git_push"),
            Credentials(token=b"t", secret_data={"token": b"t"}),
        )


def test_body_is_not_authenticated_but_the_header_is() -> None:
    delivery = fx.load("azure-devops", "git_push")
    azure_devops.verify(RawDelivery(headers=delivery.headers, body=b"{}"), CREDS)


def test_malformed_bodies() -> None:
    delivery = fx.load("azure-devops", "git_push", body=b"not json")
    assert azure_devops.event_name(delivery) is None
    with pytest.raises(MalformedPayload):
        azure_devops.parse(delivery)
    with pytest.raises(MalformedPayload, match="no eventType"):
        azure_devops.parse(fx.load("azure-devops", "git_push", body=b'{"id": "x"}'))
    with pytest.raises(MalformedPayload, match=r"Azure DevOps git\.push"):
        azure_devops.parse(
            fx.load("azure-devops", "git_push", body=b'{"eventType": "git.push", "resource": {}}')
        )
