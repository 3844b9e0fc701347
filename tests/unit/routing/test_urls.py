"""normalize_git_url: every spelling of one repository gives one key; junk gives None."""

from __future__ import annotations

import pytest

from receiver.routing.urls import normalize_all, normalize_git_url

SELF_HOSTED = "git.example.com/group/sub/repo"

SAME_REPO = [
    ("https", "https://git.example.com/group/sub/repo", SELF_HOSTED),
    ("https-dot-git", "https://git.example.com/group/sub/repo.git", SELF_HOSTED),
    ("http", "http://git.example.com/group/sub/repo", SELF_HOSTED),
    ("ssh-dot-git", "ssh://git@git.example.com/group/sub/repo.git", SELF_HOSTED),
    ("ssh-port-22", "ssh://git@git.example.com:22/group/sub/repo.git", SELF_HOSTED),
    ("scp-like", "git@git.example.com:group/sub/repo.git", SELF_HOSTED),
    ("scp-like-no-user", "git.example.com:group/sub/repo", SELF_HOSTED),
    ("scp-like-leading-slash", "git@git.example.com:/group/sub/repo.git", SELF_HOSTED),
    ("upper-case-host", "https://GIT.Example.COM/group/sub/repo", SELF_HOSTED),
    ("trailing-slash", "https://git.example.com/group/sub/repo/", SELF_HOSTED),
    ("dot-git-and-slash", "https://git.example.com/group/sub/repo.git/", SELF_HOSTED),
    ("user-and-password", "https://user:s3cret@git.example.com/group/sub/repo.git", SELF_HOSTED),
    ("token-user", "https://oauth2:glpat-xyz@git.example.com/group/sub/repo", SELF_HOSTED),
    ("port-443", "https://git.example.com:443/group/sub/repo", SELF_HOSTED),
    ("port-80", "http://git.example.com:80/group/sub/repo", SELF_HOSTED),
    # Ports are ignored altogether: https on 8443 and ssh on 2222 are the same repository.
    ("port-8443", "https://git.example.com:8443/group/sub/repo", SELF_HOSTED),
    ("ssh-port-2222", "ssh://git@git.example.com:2222/group/sub/repo.git", SELF_HOSTED),
    ("git-plus-ssh", "git+ssh://git@git.example.com/group/sub/repo.git", SELF_HOSTED),
    ("double-slashes", "https://git.example.com//group//sub/repo", SELF_HOSTED),
    ("surrounding-space", "  https://git.example.com/group/sub/repo\n", SELF_HOSTED),
    ("gitlab-web-route", "https://git.example.com/group/sub/repo/-/tree/main", SELF_HOSTED),
    ("github-https", "https://github.com/Org/Repo", "github.com/org/repo"),
    ("github-ssh-url", "ssh://git@github.com/org/repo.git", "github.com/org/repo"),
    ("github-scp", "git@github.com:Org/Repo.git", "github.com/org/repo"),
    ("github-git-protocol", "git://github.com/org/repo.git", "github.com/org/repo"),
    ("gitlab-com-case", "https://gitlab.com/Group/Sub/Repo.git", "gitlab.com/group/sub/repo"),
    ("bitbucket-org-case", "git@bitbucket.org:Team/Repo.git", "bitbucket.org/team/repo"),
    (
        "azure-https",
        "https://dev.azure.com/org/project/_git/repo",
        "dev.azure.com/org/project/repo",
    ),
    (
        "azure-https-user",
        "https://org@dev.azure.com/org/project/_git/repo",
        "dev.azure.com/org/project/repo",
    ),
    ("azure-ssh", "git@ssh.dev.azure.com:v3/org/project/repo", "dev.azure.com/org/project/repo"),
    (
        "azure-ssh-url",
        "ssh://git@ssh.dev.azure.com/v3/Org/Project/Repo",
        "dev.azure.com/org/project/repo",
    ),
    (
        "azure-visualstudio",
        "https://org.visualstudio.com/project/_git/repo",
        "dev.azure.com/org/project/repo",
    ),
    (
        "azure-visualstudio-collection",
        "https://org.visualstudio.com/DefaultCollection/project/_git/repo",
        "dev.azure.com/org/project/repo",
    ),
    (
        "azure-vs-ssh",
        "org@vs-ssh.visualstudio.com:v3/org/project/repo",
        "dev.azure.com/org/project/repo",
    ),
    (
        "azure-space-in-project",
        "https://dev.azure.com/org/My%20Project/_git/repo",
        "dev.azure.com/org/my project/repo",
    ),
    (
        "azure-project-named-like-repo",
        "https://dev.azure.com/org/_git/repo",
        "dev.azure.com/org/repo/repo",
    ),
    (
        "bitbucket-server-http",
        "https://bb.example.com/scm/proj/repo.git",
        "bb.example.com/proj/repo",
    ),
    (
        "bitbucket-server-http-key-case",
        "https://bb.example.com/scm/PROJ/repo.git",
        "bb.example.com/proj/repo",
    ),
    (
        "bitbucket-server-context-path",
        "https://example.com/bitbucket/scm/proj/repo.git",
        "example.com/proj/repo",
    ),
    (
        "bitbucket-server-ssh",
        "ssh://git@bb.example.com:7999/proj/repo.git",
        "bb.example.com/proj/repo",
    ),
    (
        "bitbucket-server-ssh-key-case",
        "ssh://git@bb.example.com:7999/PROJ/repo.git",
        "bb.example.com/proj/repo",
    ),
    (
        "bitbucket-server-web",
        "https://bb.example.com/projects/PROJ/repos/repo/browse",
        "bb.example.com/proj/repo",
    ),
    (
        "bitbucket-server-personal",
        "https://bb.example.com/scm/~Alice/repo.git",
        "bb.example.com/~alice/repo",
    ),
    (
        "bitbucket-server-personal-web",
        "https://bb.example.com/users/alice/repos/repo/browse",
        "bb.example.com/~alice/repo",
    ),
    ("ipv6-host", "https://[2001:db8::1]:8443/group/repo.git", "[2001:db8::1]/group/repo"),
]


@pytest.mark.parametrize(
    ("url", "expected"), [c[1:] for c in SAME_REPO], ids=[c[0] for c in SAME_REPO]
)
def test_normalizes_to_one_key(url: str, expected: str) -> None:
    assert normalize_git_url(url) == expected


JUNK = [
    ("empty", ""),
    ("blank", "   "),
    ("word", "not a url"),
    ("host-only", "https://git.example.com"),
    ("host-slash", "https://git.example.com/"),
    ("only-dot-git", "https://git.example.com/.git"),
    ("file-scheme", "file:///srv/git/repo.git"),
    ("ftp-scheme", "ftp://git.example.com/repo"),
    ("local-path", "/srv/git/repo.git"),
    ("relative-path", "../repo"),
    ("windows-path", "C:\\src\\repo"),
    ("one-slash-scheme", "https:/git.example.com/repo"),
    ("bad-port", "https://git.example.com:99999/repo"),
    ("scp-without-path", "git@git.example.com:"),
    ("space-inside", "https://git.example.com/my repo"),
    ("dot-dot-segment", "https://git.example.com/a/../b"),
    ("bad-host", "https://-bad-.example.com/a/b"),
]


@pytest.mark.parametrize("url", [c[1] for c in JUNK], ids=[c[0] for c in JUNK])
def test_junk_gives_none(url: str) -> None:
    assert normalize_git_url(url) is None


DIFFERENT = [
    ("other-repo", "https://git.example.com/group/a", "https://git.example.com/group/b"),
    ("other-host", "https://git.example.com/group/a", "https://git2.example.com/group/a"),
    ("subgroup-vs-group", "https://git.example.com/group/sub/a", "https://git.example.com/group/a"),
    # Self-hosted forges may be case-sensitive: the path keeps its case there.
    ("self-hosted-path-case", "https://git.example.com/Group/A", "https://git.example.com/group/a"),
    ("prefix-of-name", "https://github.com/org/repo", "https://github.com/org/repo-two"),
]


@pytest.mark.parametrize(
    ("left", "right"), [c[1:] for c in DIFFERENT], ids=[c[0] for c in DIFFERENT]
)
def test_different_repositories_stay_apart(left: str, right: str) -> None:
    assert normalize_git_url(left) != normalize_git_url(right)
    assert normalize_git_url(left) is not None and normalize_git_url(right) is not None


def test_normalize_all_dedupes_and_drops_junk() -> None:
    keys = normalize_all(
        [
            "https://github.com/org/repo.git",
            "git@github.com:org/repo.git",
            "junk",
            "https://github.com/org/repo",
        ]
    )
    assert keys == ("github.com/org/repo",)


def test_user_info_never_reaches_the_key() -> None:
    key = normalize_git_url("https://deploy:hunter2@git.example.com/group/repo.git")
    assert key is not None and "hunter2" not in key and "deploy" not in key
