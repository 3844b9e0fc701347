"""The table of Argo CD matching cases: one object, one push, refreshed or not.

Shared by the pure unit test (records built from the dicts below) and the integration test
(the same objects created in the real API server with Argo CD's own CRDs, read back, indexed).
Each rule of Argo CD's webhook handlers (repoURL, targetRevision, manifest-generate-paths,
ApplicationSet Git generators, registry pushes) has at least one case that refreshes and one
that does not.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from receiver.events import GitPush, ImagePush

REPO = "https://github.com/example/fleet"
OTHER = "https://github.com/example/other"
SELF_HOSTED = "https://git.example.com/team/app"
DESTINATION = {"server": "https://kubernetes.default.svc", "namespace": "default"}


def push(
    ref: str = "refs/heads/main",
    *,
    repo: str = REPO,
    default_branch: str | None = "main",
    changed: frozenset[str] | None = None,
    deleted: bool = False,
) -> GitPush:
    return GitPush(
        source="github",
        event="push",
        repo_urls=(repo, f"{repo}.git", repo.replace("https://", "git@").replace("/", ":", 1)),
        ref=ref,
        before="1" * 40,
        after="0" * 40 if deleted else "2" * 40,
        deleted=deleted,
        default_branch=default_branch,
        changed_paths=changed,
    )


def image(repository: str, tag: str | None) -> ImagePush:
    return ImagePush(source="ghcr", event="package", repository=repository, tag=tag)


def git_source(
    target: str | None = None, *, repo: str = REPO, path: str = "apps/web"
) -> dict[str, Any]:
    source: dict[str, Any] = {"repoURL": repo, "path": path}
    if target is not None:
        source["targetRevision"] = target
    return source


@dataclass(frozen=True)
class Case:
    id: str
    spec: dict[str, Any]
    event: GitPush | ImagePush
    refresh: bool
    kind: str = "Application"
    annotations: dict[str, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.id.replace("_", "-")

    def manifest(self, namespace: str) -> dict[str, Any]:
        metadata: dict[str, Any] = {"name": self.name, "namespace": namespace}
        if self.annotations:
            metadata["annotations"] = dict(self.annotations)
        return {
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": self.kind,
            "metadata": metadata,
            "spec": self.spec,
        }


def app(*sources: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """An Application spec with one `source`, or `sources` when several are given."""
    spec: dict[str, Any] = {"project": "default", "destination": dict(DESTINATION), **extra}
    if len(sources) == 1:
        spec["source"] = sources[0]
    elif sources:
        spec["sources"] = list(sources)
    return spec


def appset(*generators: dict[str, Any]) -> dict[str, Any]:
    return {
        "generators": list(generators),
        "template": {
            "metadata": {"name": "{{path.basename}}"},
            "spec": {
                "project": "default",
                "destination": dict(DESTINATION),
                "source": {"repoURL": REPO, "path": "{{path}}", "targetRevision": "HEAD"},
            },
        },
    }


def git_generator(revision: str, *, repo: str = REPO) -> dict[str, Any]:
    return {"git": {"repoURL": repo, "revision": revision, "directories": [{"path": "apps/*"}]}}


PATHS = "argocd.argoproj.io/manifest-generate-paths"
TAG = "refs/tags/"

CASES: tuple[Case, ...] = (
    # targetRevision: HEAD / empty follow the default branch
    Case("head_default_branch_pushed", app(git_source("HEAD")), push(), True),
    Case("empty_revision_default_branch", app(git_source()), push(), True),
    Case("head_other_branch_pushed", app(git_source("HEAD")), push("refs/heads/dev"), False),
    Case("head_unknown_default_branch", app(git_source("HEAD")), push(default_branch=None), True),
    # branch, tag, full ref
    Case("branch_name", app(git_source("main")), push(), True),
    Case("branch_other", app(git_source("staging")), push(), False),
    Case(
        "branch_with_slash",
        app(git_source("feature/login")),
        push("refs/heads/feature/login"),
        True,
    ),
    Case("full_ref_heads", app(git_source("refs/heads/main")), push(), True),
    Case("full_ref_tags", app(git_source("refs/tags/v1.2.0")), push(TAG + "v1.2.0"), True),
    Case("tag_name", app(git_source("v1.2.0")), push(TAG + "v1.2.0"), True),
    Case("tag_other", app(git_source("v1.2.0")), push(TAG + "v1.3.0"), False),
    Case(
        "deleted_branch_refreshes",
        app(git_source("dev")),
        push("refs/heads/dev", deleted=True),
        True,
    ),
    # semver constraints against the pushed tag (Masterminds)
    Case("semver_in_range", app(git_source(">=1.2.0 <2.0.0")), push(TAG + "v1.4.0"), True),
    Case("semver_out_of_range", app(git_source(">=1.2.0 <2.0.0")), push(TAG + "v2.0.0"), False),
    Case("semver_caret", app(git_source("^1.2")), push(TAG + "1.9.9"), True),
    Case("semver_wildcard", app(git_source("1.2.*")), push(TAG + "v1.2.7"), True),
    Case(
        "semver_prerelease_excluded", app(git_source(">=1.0.0")), push(TAG + "v1.5.0-rc.1"), False
    ),
    # a commit SHA never moves
    Case("commit_sha_pinned", app(git_source("a" * 40)), push(), False),
    # repoURL spellings
    Case(
        "repo_url_scp_like_upper_case",
        app(git_source("HEAD", repo="git@github.com:Example/Fleet.git")),
        push(),
        True,
    ),
    Case(
        "repo_url_altssh_host",
        app(git_source("HEAD", repo="ssh://git@altssh.gitlab.com:443/team/app.git")),
        push(repo="https://gitlab.com/team/app"),
        True,
    ),
    Case(
        "repo_url_self_hosted_case_ignored",
        app(git_source("HEAD", repo="https://git.example.com/Team/App.git")),
        push(repo=SELF_HOSTED),
        True,
    ),
    Case("repo_url_other_repository", app(git_source("HEAD", repo=OTHER)), push(), False),
    # manifest-generate-paths
    Case(
        "paths_dot_is_source_path",
        app(git_source("HEAD")),
        push(changed=frozenset({"apps/web/deploy.yaml"})),
        True,
        annotations={PATHS: "."},
    ),
    Case(
        "paths_dot_other_directory",
        app(git_source("HEAD")),
        push(changed=frozenset({"apps/api/deploy.yaml"})),
        False,
        annotations={PATHS: "."},
    ),
    Case(
        "paths_relative_parent",
        app(git_source("HEAD")),
        push(changed=frozenset({"apps/shared/cm.yaml"})),
        True,
        annotations={PATHS: "../shared"},
    ),
    Case(
        "paths_absolute_from_root",
        app(git_source("HEAD")),
        push(changed=frozenset({"common/labels.yaml"})),
        True,
        annotations={PATHS: "/common"},
    ),
    Case(
        "paths_semicolon_separated_hit",
        app(git_source("HEAD")),
        push(changed=frozenset({"docs/x.md", "common/a.yaml"})),
        True,
        annotations={PATHS: ". ; /common"},
    ),
    Case(
        "paths_semicolon_separated_miss",
        app(git_source("HEAD")),
        push(changed=frozenset({"docs/x.md"})),
        False,
        annotations={PATHS: ".;/common"},
    ),
    Case(
        "paths_glob",
        app(git_source("HEAD", path="charts")),
        push(changed=frozenset({"charts/web/values.yaml"})),
        True,
        annotations={PATHS: "/charts/*/values.yaml"},
    ),
    Case(
        "paths_glob_no_separator_match",
        app(git_source("HEAD", path="charts")),
        push(changed=frozenset({"charts/web/prod/values.yaml"})),
        False,
        annotations={PATHS: "/charts/*/values.yaml"},
    ),
    Case(
        "paths_whole_segments_only",
        app(git_source("HEAD", path="apps")),
        push(changed=frozenset({"apps-legacy/x.yaml"})),
        False,
        annotations={PATHS: "."},
    ),
    Case(
        "paths_unknown_file_list_never_skips",
        app(git_source("HEAD")),
        push(changed=None),
        True,
        annotations={PATHS: "."},
    ),
    # several sources
    Case(
        "multi_source_values_repo",
        app(
            {"repoURL": "https://charts.example.com", "chart": "web", "targetRevision": "1.2.3"},
            {"repoURL": REPO, "targetRevision": "main", "ref": "values"},
        ),
        push(),
        True,
    ),
    Case(
        "sources_win_over_source",
        app(git_source("HEAD", repo=OTHER), git_source("HEAD", repo=OTHER))
        | {"source": git_source("HEAD")},
        push(),
        False,
    ),
    # source hydrator: dry source by its revision and the annotation, sync source by its path
    Case(
        "hydrator_dry_source",
        app(
            sourceHydrator={
                "drySource": {"repoURL": REPO, "targetRevision": "main", "path": "dry"},
                "syncSource": {"targetBranch": "env/prod", "path": "prod"},
            }
        ),
        push(changed=frozenset({"dry/app.yaml"})),
        True,
        annotations={PATHS: "."},
    ),
    Case(
        "hydrator_sync_branch_outside_path",
        app(
            sourceHydrator={
                "drySource": {"repoURL": REPO, "targetRevision": "main", "path": "dry"},
                "syncSource": {"targetBranch": "env/prod", "path": "prod"},
            }
        ),
        push("refs/heads/env/prod", changed=frozenset({"staging/app.yaml"})),
        False,
    ),
    # ApplicationSets with Git generators
    Case("appset_git_head", appset(git_generator("HEAD")), push(), True, kind="ApplicationSet"),
    Case(
        "appset_git_full_ref",
        appset(git_generator("refs/heads/main")),
        push(),
        True,
        kind="ApplicationSet",
    ),
    Case(
        "appset_git_other_branch",
        appset(git_generator("release")),
        push(),
        False,
        kind="ApplicationSet",
    ),
    Case(
        "appset_matrix_nested_git",
        appset({"matrix": {"generators": [git_generator("main"), {"list": {"elements": []}}]}}),
        push(),
        True,
        kind="ApplicationSet",
    ),
    Case(
        "appset_plugin_every_push",
        appset({"plugin": {"configMapRef": {"name": "plugin"}}}),
        push(repo=OTHER),
        True,
        kind="ApplicationSet",
    ),
    Case(
        "appset_other_repository",
        appset(git_generator("HEAD", repo=OTHER)),
        push(),
        False,
        kind="ApplicationSet",
    ),
    # registry pushes: OCI sources and Helm charts from OCI registries
    Case(
        "oci_source_tag",
        app({"repoURL": "oci://ghcr.io/example/manifests", "targetRevision": "1.2.0", "path": "."}),
        image("ghcr.io/example/manifests", "1.2.0"),
        True,
    ),
    Case(
        "oci_source_other_tag",
        app({"repoURL": "oci://ghcr.io/example/manifests", "targetRevision": "1.2.0", "path": "."}),
        image("ghcr.io/example/manifests", "1.3.0"),
        False,
    ),
    Case(
        "helm_oci_chart_semver",
        app({"repoURL": "ghcr.io/example/charts", "chart": "web", "targetRevision": "^1.0.0"}),
        image("ghcr.io/example/charts/web", "1.3.0"),
        True,
    ),
    Case(
        "helm_oci_chart_out_of_range",
        app(
            {"repoURL": "oci://ghcr.io/example/charts", "chart": "web", "targetRevision": "^1.0.0"}
        ),
        image("ghcr.io/example/charts/web", "2.0.0"),
        False,
    ),
    Case(
        "helm_https_repository_is_no_registry",
        app({"repoURL": "https://ghcr.io/example/charts", "chart": "web", "targetRevision": "*"}),
        image("ghcr.io/example/charts/web", "1.0.0"),
        False,
    ),
)
