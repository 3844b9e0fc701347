"""RouteIndex and DownstreamIndex: lookups by any URL spelling, reasons for every skip."""

from __future__ import annotations

from receiver.events import GitPush, ObjectRef
from receiver.routing import urls
from receiver.routing.index import (
    DownstreamIndex,
    DownstreamRecord,
    GitRepoRecord,
    RouteIndex,
    SkipCause,
)
from receiver.routing.refs import RefSpec

API = "source.toolkit.fluxcd.io/v1"
REPO = "https://git.example.com/team/app.git"


def git_repo(
    name: str,
    *,
    url: str = REPO,
    namespace: str = "flux-system",
    branch: str | None = "main",
    suspended: bool = False,
    path_filters: tuple[str, ...] = (),
) -> GitRepoRecord:
    return GitRepoRecord(
        ref=ObjectRef(API, "GitRepository", namespace, name),
        url=url,
        normalized_url=urls.normalize_git_url(url),
        ref_spec=RefSpec(branch=branch),
        suspended=suspended,
        path_filters=path_filters,
        labels=(),
    )


def push(
    *repo_urls: str,
    ref: str = "refs/heads/main",
    changed: frozenset[str] | None = None,
    deleted: bool = False,
) -> GitPush:
    return GitPush(
        source="github",
        event="push",
        repo_urls=repo_urls or (REPO,),
        ref=ref,
        deleted=deleted,
        default_branch="main",
        changed_paths=changed,
    )


def names(refs: tuple[ObjectRef, ...]) -> list[str]:
    return [ref.name for ref in refs]


def test_every_url_spelling_of_the_push_finds_the_object() -> None:
    index = RouteIndex()
    index.upsert(git_repo("app"))
    for spelling in (
        "git@git.example.com:team/app.git",
        "ssh://git@git.example.com:2222/team/app",
        "https://GIT.example.com/team/app/",
    ):
        assert names(index.route(push(spelling)).targets) == ["app"], spelling


def test_an_object_matched_by_several_urls_is_counted_once() -> None:
    index = RouteIndex()
    index.upsert(git_repo("app"))
    result = index.route(
        push("https://git.example.com/team/app", "git@git.example.com:team/app.git", "junk")
    )
    assert names(result.targets) == ["app"]
    assert result.repo_urls == ("git.example.com/team/app",)


def test_objects_of_other_repositories_are_not_touched() -> None:
    index = RouteIndex()
    index.upsert(git_repo("app"))
    index.upsert(git_repo("other", url="https://git.example.com/team/other.git"))
    result = index.route(push())
    assert names(result.targets) == ["app"]
    assert result.skipped == ()


def test_suspended_object_is_skipped_with_reason() -> None:
    index = RouteIndex()
    index.upsert(git_repo("app", suspended=True))
    result = index.route(push())
    assert result.targets == ()
    assert [(s.ref.name, s.cause, s.reason) for s in result.skipped] == [
        ("app", SkipCause.SUSPENDED, "suspended")
    ]


def test_ref_mismatch_is_skipped_with_reason() -> None:
    index = RouteIndex()
    index.upsert(git_repo("prod", branch="main"))
    index.upsert(git_repo("dev", branch="dev"))
    result = index.route(push(ref="refs/heads/dev"))
    assert names(result.targets) == ["dev"]
    (skip,) = result.skipped
    assert skip.ref.name == "prod" and skip.cause is SkipCause.REF
    assert skip.reason == "branch main does not match pushed refs/heads/dev"


def test_path_filters_skip_pushes_outside_them() -> None:
    index = RouteIndex()
    index.upsert(git_repo("prod", path_filters=("apps", "clusters/prod")))
    index.upsert(git_repo("all"))
    result = index.route(push(changed=frozenset({"docs/readme.md", "apps-legacy/x.yaml"})))
    assert names(result.targets) == ["all"]
    (skip,) = result.skipped
    assert (skip.cause, skip.reason) == (
        SkipCause.PATH,
        "no changed path under apps, clusters/prod",
    )


def test_path_filters_never_skip_when_changes_are_unknown() -> None:
    index = RouteIndex()
    index.upsert(git_repo("prod", path_filters=("apps",)))
    assert names(index.route(push(changed=None)).targets) == ["prod"]
    assert names(index.route(push(changed=frozenset({"apps/x.yaml"}))).targets) == ["prod"]


def test_branch_deletion_triggers_nothing() -> None:
    index = RouteIndex()
    index.upsert(git_repo("app"))
    result = index.route(push(deleted=True))
    assert result.targets == ()
    assert result.skipped[0].cause is SkipCause.REF


def test_hits_carry_the_reason_and_targets_are_sorted() -> None:
    index = RouteIndex()
    for name in ("c", "a", "b"):
        index.upsert(git_repo(name))
    result = index.route(push())
    assert names(result.targets) == ["a", "b", "c"]
    assert all(hit.reason == "branch main matches pushed refs/heads/main" for hit in result.hits)


def test_upsert_with_a_new_url_moves_the_object() -> None:
    index = RouteIndex()
    index.upsert(git_repo("app"))
    index.upsert(git_repo("app", url="https://git.example.com/team/new.git"))
    assert len(index) == 1
    assert index.route(push()).targets == ()
    assert names(index.route(push("https://git.example.com/team/new")).targets) == ["app"]


def test_remove_forgets_the_object() -> None:
    index = RouteIndex()
    record = git_repo("app")
    index.upsert(record)
    assert index.remove(record.ref) == record
    assert index.remove(record.ref) is None
    assert len(index) == 0
    assert index.route(push()).targets == ()


def test_unusable_url_is_kept_but_never_routed() -> None:
    index = RouteIndex()
    record = git_repo("broken", url="not a url")
    index.upsert(record)
    assert len(index) == 1 and index.get(record.ref) == record
    assert index.route(push("not a url")).targets == ()


def test_records_for_lists_every_object_of_the_repository() -> None:
    index = RouteIndex()
    index.upsert(git_repo("b"))
    index.upsert(git_repo("a", suspended=True))
    index.upsert(git_repo("x", url="https://git.example.com/team/other"))
    assert [r.ref.name for r in index.records_for(["git@git.example.com:team/app.git"])] == [
        "a",
        "b",
    ]


def test_route_in_a_large_index_returns_only_the_pushed_repository() -> None:
    index = RouteIndex()
    repos = 10_000
    for i in range(100_000):
        repo = i % repos
        index.upsert(
            git_repo(f"obj-{i}", url=f"https://git.example.com/group-{repo % 97}/repo-{repo}")
        )
    assert len(index) == 100_000
    result = index.route(push(f"git@git.example.com:group-{1234 % 97}/repo-1234.git"))
    expected = sorted(f"obj-{i}" for i in range(1234, 100_000, repos))
    assert names(result.targets) == expected
    assert result.skipped == ()


def downstream(
    name: str, source: tuple[str, str, str] | None, kind: str = "Kustomization"
) -> DownstreamRecord:
    return DownstreamRecord(ref=ObjectRef("x/v1", kind, "apps", name), source=source)


def test_downstream_index_maps_sources_to_readers() -> None:
    index = DownstreamIndex()
    source = ObjectRef(API, "GitRepository", "flux-system", "app")
    index.upsert(downstream("b", ("GitRepository", "flux-system", "app")))
    index.upsert(downstream("a", ("GitRepository", "flux-system", "app"), kind="HelmRelease"))
    index.upsert(downstream("c", ("OCIRepository", "flux-system", "app")))
    index.upsert(downstream("d", None))
    assert len(index) == 4
    assert [ref.name for ref in index.downstream_of(source)] == ["a", "b"]


def test_downstream_index_follows_a_changed_source_and_removal() -> None:
    index = DownstreamIndex()
    old = ObjectRef(API, "GitRepository", "flux-system", "old")
    new = ObjectRef(API, "GitRepository", "flux-system", "new")
    index.upsert(downstream("k", ("GitRepository", "flux-system", "old")))
    index.upsert(downstream("k", ("GitRepository", "flux-system", "new")))
    assert index.downstream_of(old) == ()
    assert [ref.name for ref in index.downstream_of(new)] == ["k"]
    removed = index.remove(ObjectRef("x/v1", "Kustomization", "apps", "k"))
    assert removed is not None and index.downstream_of(new) == () and len(index) == 0


def test_a_repository_shrinking_to_one_object_and_none_still_routes() -> None:
    index = RouteIndex()
    records = [git_repo(name) for name in ("a", "b", "c")]
    for record in records:
        index.upsert(record)
    assert names(index.route(push()).targets) == ["a", "b", "c"]
    index.remove(records[0].ref)
    assert names(index.route(push()).targets) == ["b", "c"]
    index.remove(records[1].ref)
    assert names(index.route(push()).targets) == ["c"]
    index.upsert(git_repo("d"))
    assert names(index.route(push()).targets) == ["c", "d"]
    index.remove(records[2].ref)
    index.remove(git_repo("d").ref)
    assert index.route(push()).targets == () and len(index) == 0
    assert index.records_for([REPO]) == ()
