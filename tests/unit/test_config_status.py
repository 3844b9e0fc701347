"""The `status:` section of config.py: defaults, per-kind API URLs, token refs, clear refusals."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from receiver.config import SecretKeyRef, StatusSettings
from receiver.events import ObjectRef
from receiver.status.model import ForgeConfig, ForgeKind

GH_TOKEN = {"namespace": "flux-system", "name": "github-status"}


def settings(**overrides: Any) -> StatusSettings:
    data: dict[str, Any] = {
        "cluster": "prod-eu",
        "forges": [{"kind": "github", "host": "github.com", "token_secret_ref": GH_TOKEN}],
    }
    data.update(overrides)
    return StatusSettings.model_validate(data)


def refusal(**overrides: Any) -> str:
    with pytest.raises(ValidationError) as caught:
        settings(**overrides)
    return str(caught.value)


def forge(**fields: Any) -> dict[str, Any]:
    return {"kind": "gitlab", "host": "gitlab.example.com", "token_secret_ref": GH_TOKEN, **fields}


def test_defaults() -> None:
    loaded = settings()
    assert (loaded.prefix, loaded.target_url) == ("flux", None)
    assert loaded.forges[0].token_secret_ref == SecretKeyRef(
        namespace="flux-system", name="github-status", key="token"
    )
    assert loaded.limits.max_queue == 1000
    assert loaded.limits.drain_timeout_s == 5.0
    naming = loaded.naming()
    ks = ObjectRef("kustomize.toolkit.fluxcd.io/v1", "Kustomization", "apps", "web")
    assert naming.status_name(ks) == "flux/prod-eu/Kustomization/apps/web"


@pytest.mark.parametrize(
    ("kind", "host", "expected"),
    [
        ("github", "github.com", "https://api.github.com"),
        ("github", "ghe.example.com", "https://ghe.example.com/api/v3"),
        ("gitlab", "gitlab.com", "https://gitlab.com/api/v4"),
        ("gitlab", "git.example.org", "https://git.example.org/api/v4"),
        ("gitea", "codeberg.org", "https://codeberg.org/api/v1"),
    ],
    ids=["github.com", "ghe", "gitlab.com", "self-managed-gitlab", "gitea"],
)
def test_api_base_url_defaults_per_kind(kind: str, host: str, expected: str) -> None:
    loaded = settings(forges=[forge(kind=kind, host=host)])
    assert loaded.forges[0].forge_config() == ForgeConfig(
        kind=ForgeKind(kind), host=host, api_base_url=expected
    )


def test_explicit_api_base_url_loses_its_trailing_slash_and_host_is_lowered() -> None:
    loaded = settings(
        forges=[forge(host="GitLab.Example.com", api_base_url="http://127.0.0.1:8080/api/v4/")]
    )
    assert loaded.forges[0].forge_config() == ForgeConfig(
        kind=ForgeKind.GITLAB,
        host="gitlab.example.com",
        api_base_url="http://127.0.0.1:8080/api/v4",
    )
    assert loaded.forge("GITLAB.example.com") is loaded.forges[0]
    assert loaded.forge("github.com") is None


def test_namespace_token_refs_live_in_the_objects_namespace_and_never_fall_back() -> None:
    loaded = settings(
        forges=[forge(namespace_token_secret_refs={"team-a": {"name": "gl", "key": "pat"}})]
    )
    gitlab = loaded.forges[0]
    assert gitlab.token_ref("team-a") == SecretKeyRef(namespace="team-a", name="gl", key="pat")
    assert gitlab.token_ref("team-b") == SecretKeyRef(namespace="flux-system", name="github-status")
    assert gitlab.token_ref(None) == gitlab.token_secret_ref


def test_only_namespace_tokens_is_allowed_and_other_namespaces_get_none() -> None:
    tenant_only = forge(
        token_secret_ref=None, namespace_token_secret_refs={"team-a": {"name": "gl"}}
    )
    gitlab = settings(forges=[tenant_only]).forges[0]
    assert gitlab.token_ref("team-a") == SecretKeyRef(namespace="team-a", name="gl")
    assert gitlab.token_ref("team-b") is None


def test_target_url_template_is_checked_and_rendered() -> None:
    loaded = settings(target_url="https://flux.example/{cluster}/{namespace}/{name}?sha={sha}")
    ks = ObjectRef("kustomize.toolkit.fluxcd.io/v1", "Kustomization", "apps", "web")
    assert loaded.naming().target_url(ks, sha="ab" * 20) == (
        f"https://flux.example/prod-eu/apps/web?sha={'ab' * 20}"
    )


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"cluster": ""}, "is not a usable cluster name"),
        ({"cluster": "prod/eu"}, "is not a usable cluster name"),
        ({"prefix": "flux status"}, "is not a usable prefix"),
        ({"target_url": "flux.example/{name}"}, "must start with http:// or https://"),
        ({"target_url": "https://flux.example/{repo}"}, "unknown fields ['repo']"),
        ({"target_url": "https://flux.example/{name"}, "is not a valid template"),
        ({"forges": []}, "list at least one forge"),
        ({"forges": [forge(), forge(host="GITLAB.example.com")]}, "is listed twice"),
        ({"forges": [forge(kind="bitbucket")]}, "'github', 'gitlab' or 'gitea'"),
        ({"forges": [forge(host="https://gitlab.example.com")]}, "is not a bare host name"),
        ({"forges": [forge(host="gitlab.example.com:8443")]}, "without scheme, port or path"),
        (
            {"forges": [forge(api_base_url="gitlab.example.com/api/v4")]},
            "api_base_url is not an http(s) URL",
        ),
        (
            {"forges": [forge(api_base_url="https://u:p@gitlab.example.com/api/v4")]},
            "must not carry a query, fragment or credentials",
        ),
        ({"forges": [forge(token_secret_ref=None)]}, "set token_secret_ref"),
        (
            {"forges": [forge(token_secret_ref={"namespace": "Flux_System", "name": "x"})]},
            "token_secret_ref.namespace",
        ),
        (
            {"forges": [forge(token_secret_ref={"namespace": "ns", "name": "x", "key": "a b"})]},
            "token_secret_ref.key",
        ),
        ({"forges": [forge(token="glpat-inline")]}, "Extra inputs are not permitted"),
        ({"limits": {"max_queue": 0}}, "limits.max_queue"),
        ({"limits": {"queue": 5}}, "Extra inputs are not permitted"),
        ({"enabled": True}, "Extra inputs are not permitted"),
    ],
    ids=[
        "empty-cluster",
        "slash-in-cluster",
        "space-in-prefix",
        "target-url-no-scheme",
        "target-url-unknown-field",
        "target-url-unbalanced",
        "no-forge",
        "duplicate-host",
        "unknown-kind",
        "host-with-scheme",
        "host-with-port",
        "api-url-no-scheme",
        "api-url-credentials",
        "no-token-ref",
        "bad-secret-namespace",
        "bad-secret-key",
        "inline-token-refused",
        "zero-queue",
        "unknown-limit",
        "unknown-field",
    ],
)
def test_refusals_name_the_field_and_the_fix(overrides: dict[str, Any], message: str) -> None:
    assert message in refusal(**overrides)


def test_the_message_config_load_shows_never_echoes_api_url_credentials() -> None:
    with pytest.raises(ValidationError) as caught:
        settings(forges=[forge(api_base_url="https://user:hunter2@gitlab.example.com/api/v4")])
    messages = [error["msg"] for error in caught.value.errors()]
    assert messages and all("hunter2" not in message for message in messages)


def test_settings_are_frozen() -> None:
    loaded = settings()
    with pytest.raises(ValidationError):
        loaded.cluster = "other"  # type: ignore[misc]
