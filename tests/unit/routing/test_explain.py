"""explain: the text table and JSON of `gitops-receiver routes`."""

from __future__ import annotations

import json

from receiver.events import GitPush, ObjectRef
from receiver.routing import urls
from receiver.routing.explain import explain_rows, render_json, render_text
from receiver.routing.index import GitRepoRecord, RouteIndex
from receiver.routing.refs import RefSpec

URL = "https://github.com/org/app"


def record(name: str, **fields: object) -> GitRepoRecord:
    values: dict[str, object] = {
        "ref": ObjectRef("source.toolkit.fluxcd.io/v1", "GitRepository", "flux-system", name),
        "url": URL,
        "normalized_url": urls.normalize_git_url(URL),
        "ref_spec": RefSpec(branch="main"),
        "suspended": False,
        "path_filters": (),
        "labels": (),
    }
    values.update(fields)
    return GitRepoRecord(**values)  # type: ignore[arg-type]


def scenario(changed: frozenset[str] | None) -> tuple[GitPush, RouteIndex]:
    index = RouteIndex()
    index.upsert(record("prod", path_filters=("clusters/prod",)))
    index.upsert(record("all"))
    index.upsert(record("paused", suspended=True))
    index.upsert(record("dev", ref_spec=RefSpec(branch="dev")))
    push = GitPush(
        source="cli",
        event="push",
        repo_urls=("git@github.com:org/app.git",),
        ref="refs/heads/main",
        default_branch="main",
        changed_paths=changed,
    )
    return push, index


def test_rows_list_targets_first_then_every_skip_with_its_cause() -> None:
    push, index = scenario(frozenset({"apps/x.yaml"}))
    result = index.route(push)
    rows = explain_rows(result, records=index.records_for(push.repo_urls))
    assert [(r.object.split("/")[-1], r.decision, r.cause) for r in rows] == [
        ("all", "reconcile", "match"),
        ("dev", "skip", "ref"),
        ("paused", "skip", "suspended"),
        ("prod", "skip", "path"),
    ]
    assert (
        rows[3].paths == "clusters/prod" and rows[3].reason == "no changed path under clusters/prod"
    )
    assert rows[1].ref_spec == "branch dev"


def test_text_names_the_push_and_aligns_columns() -> None:
    push, index = scenario(None)
    result = index.route(push)
    text = render_text(result, push=push, records=index.records_for(push.repo_urls))
    lines = text.splitlines()
    assert lines[0] == "repository: github.com/org/app"
    assert "changed:    unknown (path filters never skip)" in lines
    assert "reconcile:  2 of 4" in lines
    header = next(line for line in lines if line.startswith("OBJECT"))
    row = next(line for line in lines if "GitRepository/flux-system/paused" in line)
    assert row.index("skip") == header.index("DECISION")
    assert row.index("suspended") == header.index("REASON")


def test_text_when_no_object_points_at_the_repository() -> None:
    push, _ = scenario(None)
    result = RouteIndex().route(push)
    assert "no GitRepository or Argo CD object points at this repository" in render_text(
        result, push=push, records=()
    )


def test_json_has_the_same_content_and_is_serialisable() -> None:
    push, index = scenario(frozenset({"clusters/prod/a.yaml"}))
    result = index.route(push)
    data = render_json(result, push=push, records=index.records_for(push.repo_urls))
    assert json.loads(json.dumps(data)) == data
    assert data["push"]["normalized_urls"] == ["github.com/org/app"]
    assert data["push"]["changed_paths"] == ["clusters/prod/a.yaml"]
    assert data["reconcile"] == [
        "GitRepository/flux-system/all",
        "GitRepository/flux-system/prod",
    ]
    decisions = {o["object"].split("/")[-1]: (o["decision"], o["cause"]) for o in data["objects"]}
    assert decisions == {
        "all": ("reconcile", "match"),
        "prod": ("reconcile", "match"),
        "dev": ("skip", "ref"),
        "paused": ("skip", "suspended"),
    }
