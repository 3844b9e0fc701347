"""Status names, links, trimming and forge locations (receiver/status/model.py)."""

from __future__ import annotations

import pytest

from receiver.errors import ConfigError
from receiver.events import ObjectRef
from receiver.status import model

KS = ObjectRef("kustomize.toolkit.fluxcd.io/v1", "Kustomization", "apps", "podinfo")


def test_status_name_is_prefix_cluster_kind_namespace_name() -> None:
    naming = model.StatusNaming(cluster="prod-eu")
    assert naming.status_name(KS) == "flux/prod-eu/Kustomization/apps/podinfo"


def test_status_name_prefix_is_configurable() -> None:
    naming = model.StatusNaming(cluster="c1", prefix="gitops")
    assert naming.status_name(KS) == "gitops/c1/Kustomization/apps/podinfo"


def test_target_url_fills_every_field() -> None:
    naming = model.StatusNaming(
        cluster="c1",
        target_url_template="https://ui.example/{cluster}/{kind}/{namespace}/{name}?sha={sha}",
    )
    assert (
        naming.target_url(KS, sha="abc")
        == "https://ui.example/c1/Kustomization/apps/podinfo?sha=abc"
    )


def test_no_template_means_no_link() -> None:
    assert model.StatusNaming(cluster="c1").target_url(KS, sha="abc") is None


def test_unknown_template_field_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="token"):
        model.StatusNaming(cluster="c1", target_url_template="https://x/{token}")


@pytest.mark.parametrize(
    ("text", "limit", "expected"),
    [("short", 10, "short"), ("exactly-10", 10, "exactly-10"), ("a" * 20, 10, "a" * 9 + "…")],
    ids=["under", "at-limit", "over"],
)
def test_trim(text: str, limit: int, expected: str) -> None:
    assert model.trim(text, limit=limit) == expected
    assert len(model.trim(text, limit=limit)) <= limit


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://github.com/Org/App.git", model.ForgeTarget("github.com", "Org/App")),
        (
            "https://GitLab.example.com/group/sub/proj",
            model.ForgeTarget("gitlab.example.com", "group/sub/proj"),
        ),
        (
            "ssh://git@gitlab.example.com:2222/group/proj.git",
            model.ForgeTarget("gitlab.example.com", "group/proj"),
        ),
        ("git@github.com:org/app.git", model.ForgeTarget("github.com", "org/app")),
        ("https://github.com/", None),
        ("not a url", None),
    ],
    ids=["https", "https-subgroup", "ssh-port", "scp", "no-project", "junk"],
)
def test_locate(url: str, expected: model.ForgeTarget | None) -> None:
    assert model.locate(url) == expected


def test_locate_any_takes_the_first_usable_url() -> None:
    urls = ("", "https://gitlab.example.com/group/app.git", "git@other:x/y.git")
    assert model.locate_any(urls) == model.ForgeTarget("gitlab.example.com", "group/app")
    assert model.locate_any(()) is None
