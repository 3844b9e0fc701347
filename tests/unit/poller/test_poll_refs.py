"""receiver/poller/refs.py: ls-remote parsing, spec.ref resolution, revisions, grouping."""

from __future__ import annotations

import subprocess
import sys

import pytest

from receiver.errors import LsRemoteMalformed, UnsupportedUrl
from receiver.events import ObjectRef
from receiver.poller import refs
from receiver.routing.refs import RefSpec

A = "a" * 40
B = "b" * 40
C = "c" * 40
T = "d" * 40  # an annotated tag object
P = "e" * 40  # the commit it peels to
S256 = "f" * 64

LS_REMOTE = (
    f"ref: refs/heads/main\tHEAD\n"
    f"{A}\tHEAD\n"
    f"{B}\trefs/heads/master\n"
    f"{A}\trefs/heads/main\n"
    f"{C}\trefs/heads/feature/x\n"
    f"{T}\trefs/tags/v1.2.0\n"
    f"{P}\trefs/tags/v1.2.0^{{}}\n"
    f"{C}\trefs/tags/v1.10.0-rc.1\n"
    f"{B}\trefs/tags/v0.9.0\n"
    f"{A}\trefs/tags/not-semver\n"
    f"{C}\trefs/pull/42/head\n"
)
REMOTE = refs.parse_ls_remote(LS_REMOTE)


def test_parse_ls_remote_reads_heads_peeled_tags_and_symref() -> None:
    assert REMOTE.head_sha == A
    assert REMOTE.head_target == "refs/heads/main"
    assert REMOTE.shas["refs/tags/v1.2.0"] == P
    assert "refs/tags/v1.2.0^{}" not in REMOTE.shas
    assert REMOTE.shas["refs/pull/42/head"] == C
    assert REMOTE.tags() == {"v1.2.0": P, "v1.10.0-rc.1": C, "v0.9.0": B, "not-semver": A}


def test_parse_ls_remote_head_from_symref_only_and_empty_output() -> None:
    parsed = refs.parse_ls_remote(f"ref: refs/heads/trunk\tHEAD\n{B}\trefs/heads/trunk\n\n")
    assert (parsed.head_sha, parsed.head_target) == (B, "refs/heads/trunk")
    empty = refs.parse_ls_remote("")
    assert (empty.shas, empty.head_sha, empty.head_target) == ({}, None, None)


def test_parse_ls_remote_accepts_sha256_and_crlf() -> None:
    parsed = refs.parse_ls_remote(f"{S256}\trefs/heads/main\r\n")
    assert parsed.shas == {"refs/heads/main": S256}


@pytest.mark.parametrize(
    "output",
    [
        pytest.param("no tab here\n", id="no-tab"),
        pytest.param("zzzz\trefs/heads/main\n", id="not-a-sha"),
        pytest.param(f"{A}\t\n", id="empty-ref"),
        pytest.param(f"{A[:39]}\trefs/heads/main\n", id="short-sha"),
    ],
)
def test_parse_ls_remote_rejects_malformed_lines(output: str) -> None:
    with pytest.raises(LsRemoteMalformed):
        refs.parse_ls_remote(output)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        pytest.param({"branch": "main"}, ("refs/heads/main", A), id="branch"),
        pytest.param({"branch": "feature/x"}, ("refs/heads/feature/x", C), id="branch-slash"),
        pytest.param({}, ("refs/heads/master", B), id="no-ref-is-master-not-HEAD"),
        pytest.param(None, ("refs/heads/master", B), id="ref-absent"),
        pytest.param({"branch": ""}, ("refs/heads/master", B), id="empty-branch"),
        pytest.param({"tag": "v1.2.0"}, ("refs/tags/v1.2.0", P), id="annotated-tag-peeled"),
        pytest.param({"tag": "v0.9.0"}, ("refs/tags/v0.9.0", B), id="lightweight-tag"),
        pytest.param({"semver": ">=1.0.0"}, ("refs/tags/v1.2.0", P), id="semver-skips-prerelease"),
        pytest.param({"semver": "<1.0.0"}, ("refs/tags/v0.9.0", B), id="semver-lower"),
        pytest.param({"semver": ">=1.10.0-rc.0"}, ("refs/tags/v1.10.0-rc.1", C), id="semver-pre"),
        pytest.param({"name": "refs/pull/42/head"}, ("refs/pull/42/head", C), id="name"),
        pytest.param({"name": "refs/tags/v1.2.0"}, ("refs/tags/v1.2.0", P), id="name-tag-peeled"),
        pytest.param({"commit": A.upper()}, ("", A), id="commit"),
        pytest.param({"branch": "main", "commit": B}, ("refs/heads/main", B), id="commit+branch"),
        pytest.param({"branch": "main", "tag": "v0.9.0"}, ("refs/tags/v0.9.0", B), id="tag>branch"),
        pytest.param(
            {"tag": "v0.9.0", "semver": ">=1.0.0"}, ("refs/tags/v0.9.0", B), id="tag>semver"
        ),
        pytest.param(
            {"semver": "<1.0.0", "name": "refs/heads/main"},
            ("refs/heads/main", A),
            id="name>semver",
        ),
        pytest.param({"name": "refs/heads/main", "commit": C}, ("", C), id="commit>name"),
    ],
)
def test_resolve_follows_source_controller(
    spec: dict[str, str] | None, expected: tuple[str, str]
) -> None:
    resolved = refs.resolve(RefSpec.from_spec(spec), REMOTE)
    assert resolved is not None
    assert (resolved.ref_name, resolved.sha) == expected


@pytest.mark.parametrize(
    "spec",
    [
        pytest.param({"branch": "gone"}, id="missing-branch"),
        pytest.param({"tag": "v9.9.9"}, id="missing-tag"),
        pytest.param({"semver": ">=5.0.0"}, id="no-tag-in-range"),
        pytest.param({"semver": "not a range"}, id="bad-range"),
        pytest.param({"name": "refs/heads/gone"}, id="missing-name"),
    ],
)
def test_resolve_returns_none_when_the_remote_lacks_the_ref(spec: dict[str, str]) -> None:
    assert refs.resolve(RefSpec.from_spec(spec), REMOTE) is None


def test_no_ref_on_a_remote_without_master_resolves_to_nothing() -> None:
    remote = refs.parse_ls_remote(f"ref: refs/heads/main\tHEAD\n{A}\tHEAD\n{A}\trefs/heads/main\n")
    assert refs.resolve(RefSpec(), remote) is None


@pytest.mark.parametrize(
    ("revision", "sha"),
    [
        pytest.param(f"main@sha1:{A}", A, id="branch-v1"),
        pytest.param(f"v1.2.0@sha1:{P}", P, id="tag-v1"),
        pytest.param(f"refs/pull/42/head@sha1:{C}", C, id="name-v1"),
        pytest.param(f"feature/x@sha1:{C}", C, id="branch-with-slash"),
        pytest.param(f"sha1:{B}", B, id="commit-only"),
        pytest.param(f"main/{A}", A, id="pre-v1-branch"),
        pytest.param(f"feature/x/{C}", C, id="pre-v1-branch-with-slash"),
        pytest.param(f"v1.2.0/{P}", P, id="pre-v1-tag"),
        pytest.param(A, A, id="plain"),
        pytest.param(A.upper(), A, id="upper-case"),
        pytest.param(f"main@sha256:{S256}", S256, id="sha256"),
        pytest.param(None, None, id="none"),
        pytest.param("", None, id="empty"),
        pytest.param("main@md5:abcd", None, id="unknown-algorithm"),
        pytest.param("main@sha1:xyz", None, id="not-hex"),
        pytest.param("latest", None, id="junk"),
    ],
)
def test_artifact_sha_reads_every_revision_form(revision: str | None, sha: str | None) -> None:
    assert refs.artifact_sha(revision) == sha


@pytest.mark.parametrize(
    ("remote_sha", "revision", "expected"),
    [
        pytest.param(A, f"main@sha1:{A}", False, id="same"),
        pytest.param(B, f"main@sha1:{A}", True, id="moved"),
        pytest.param(B, f"main/{A}", True, id="moved-pre-v1"),
        pytest.param(A.upper(), f"sha1:{A}", False, id="case"),
        pytest.param(A, "main@sha1:aaaaaaa", False, id="short-sha-unreadable"),
        pytest.param(B, "main@sha1:aaaaaaaaaaaa", False, id="short-is-not-a-sha"),
        pytest.param(A, None, False, id="no-artifact-yet"),
        pytest.param(A, "garbage", False, id="unreadable"),
    ],
)
def test_needs_reconcile(remote_sha: str, revision: str | None, expected: bool) -> None:
    assert refs.needs_reconcile(remote_sha, revision) is expected


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        pytest.param("https://GitHub.com/Org/Repo.git", "https://github.com/Org/Repo", id="case"),
        pytest.param("https://github.com:443/org/repo/", "https://github.com/org/repo", id="port"),
        pytest.param("https://h:8443/r.git", "https://h:8443/r", id="other-port"),
        pytest.param("ssh://git@h:22/r.git", "ssh://git@h/r", id="ssh-user"),
        pytest.param("ssh://h:2222/r", "ssh://h:2222/r", id="ssh-port"),
        pytest.param("git://127.0.0.1:9418/r.git", "git://127.0.0.1/r", id="git"),
    ],
)
def test_remote_url_keeps_scheme_and_port_apart(url: str, expected: str) -> None:
    assert refs.remote_url(url) == expected


@pytest.mark.parametrize(
    "url",
    [
        "ext::sh -c touch% /tmp/pwned",
        "file:///etc",
        "/srv/git/repo.git",
        "git@github.com:org/repo.git",
        "https://",
        "https://h:99999/r",
        "https://user:pa55@h/r.git",
        "https://ghp_token@github.com/org/repo",
        "ssh://git:pa55@h/r",
    ],
)
def test_remote_url_refuses_what_git_must_not_be_given(url: str) -> None:
    with pytest.raises(UnsupportedUrl):
        refs.remote_url(url)


def test_url_host() -> None:
    assert refs.url_host("https://H:8443/r") == "h:8443"
    assert refs.url_host("ssh://git@h/r") == "h"


def _record(
    name: str, url: str, *, namespace: str = "ns", secret: str | None = None
) -> refs.PollRecord:
    return refs.PollRecord(
        ref=ObjectRef("source.toolkit.fluxcd.io/v1", "GitRepository", namespace, name),
        url=url,
        secret_name=secret,
    )


def test_group_by_remote_one_group_per_url_and_credential() -> None:
    records = [
        _record("a", "https://h/org/repo.git"),
        _record("b", "https://H/org/repo/"),
        _record("c", "https://h/org/repo", secret="s"),
        _record("d", "https://h/org/repo", namespace="other", secret="s"),
        _record("e", "https://h/org/repo", secret="s"),
        _record("f", "ssh://git@h/org/repo"),
    ]
    groups = refs.group_by_remote(records)
    members = sorted(tuple(r.ref.name for r in g.records) for g in groups)
    assert members == [("a", "b"), ("c", "e"), ("d",), ("f",)]
    shared = next(g for g in groups if len(g.records) == 2 and g.key.secret_name == "s")
    assert shared.key.secret_namespace == "ns" and shared.host == "h"


def test_record_from_object_and_wants_poll() -> None:
    obj = {
        "apiVersion": "source.toolkit.fluxcd.io/v1",
        "kind": "GitRepository",
        "metadata": {
            "name": "app",
            "namespace": "flux-system",
            "annotations": {"gitops-receiver.io/poll": "False"},
        },
        "spec": {
            "url": "https://h/r",
            "ref": {"semver": ">=1.0.0"},
            "secretRef": {"name": "auth"},
            "suspend": False,
        },
        "status": {"artifact": {"revision": f"v1.0.0@sha1:{A}"}},
    }
    record = refs.record_from_object(obj)
    assert record.ref == ObjectRef(
        "source.toolkit.fluxcd.io/v1", "GitRepository", "flux-system", "app"
    )
    assert record.spec_ref == RefSpec(semver=">=1.0.0")
    assert (record.secret_name, record.artifact_revision) == ("auth", f"v1.0.0@sha1:{A}")
    assert refs.wants_poll(record) is False

    bare = refs.record_from_object(
        {"metadata": {"name": "x", "namespace": "y"}, "spec": {"url": "u"}}
    )
    assert (bare.secret_name, bare.artifact_revision, bare.suspended) == (None, None, False)
    assert bare.spec_ref == RefSpec()
    assert refs.wants_poll(bare) is True
    suspended = refs.record_from_object({"spec": {"url": "u", "suspend": True}})
    assert refs.wants_poll(suspended) is False


def test_needs_remote_only_for_unpinned_refs() -> None:
    assert refs.needs_remote(RefSpec(branch="main"))
    assert not refs.needs_remote(RefSpec(branch="main", commit=A))


def test_refs_module_stays_pure() -> None:
    code = (
        "import sys, receiver.poller.refs; "
        "bad = [m for m in ('git', 'aiohttp', 'kubernetes_asyncio') if m in sys.modules]; "
        "print(','.join(bad))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == ""
