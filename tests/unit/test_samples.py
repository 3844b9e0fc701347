"""`gitops-receiver send` payloads: the repository URL given is the URL sent."""

from __future__ import annotations

import pytest

from receiver import samples


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:27080/fleet.git",
        "https://github.com/example/fleet",
        "git@github.com:example/fleet.git",
    ],
)
@pytest.mark.parametrize(("kind", "field"), [("github", "clone_url"), ("gitlab", "git_http_url")])
def test_push_body_sends_the_repository_url_it_was_given(url: str, kind: str, field: str) -> None:
    body = samples.push_body(
        kind=kind, repo_url=url, ref="refs/heads/main", after="a" * 40, changed=[]
    )
    holder = body["repository"] if kind == "github" else body["project"]
    assert holder[field] == url  # type: ignore[index]


def test_web_url_keeps_scheme_and_port() -> None:
    body = samples.push_body(
        kind="github",
        repo_url="http://127.0.0.1:27080/org/fleet.git",
        ref="refs/heads/main",
        after="a" * 40,
        changed=[],
    )
    assert body["repository"]["html_url"] == "http://127.0.0.1:27080/org/fleet"  # type: ignore[index]
    assert body["repository"]["full_name"] == "org/fleet"  # type: ignore[index]
