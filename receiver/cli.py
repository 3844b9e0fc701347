"""Command line: `serve` runs the service, `send` signs and posts a sample push, `routes`
explains which GitRepositories a push would reconcile (and why not the others), `deliveries`
prints the recent deliveries one replica's inspector holds (from its JSON API).

Start-up problems (bad flag, bad config file, unloadable kubeconfig) print one line and exit
with status 2; they never show a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
import structlog

from receiver import logs, samples
from receiver.app import App
from receiver.config import Settings, load
from receiver.errors import ConfigError, KubeError, SelectorError
from receiver.events import GitPush
from receiver.inspector import views
from receiver.kube import argocd as argocd_kinds
from receiver.kube import inventory
from receiver.kube.client import KubeClient
from receiver.objects import resources
from receiver.routing import discovery, explain

log = structlog.get_logger(__name__)

EXIT_CONFIG = 2


def _serve_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    serve = sub.add_parser("serve", help="run the webhook receiver")
    serve.add_argument("--config", type=Path, help="YAML settings file (flags override it)")
    serve.add_argument("--listen", help="webhook address (default 0.0.0.0:9292)")
    serve.add_argument(
        "--health-listen", help="/healthz and /readyz address (default 0.0.0.0:9440)"
    )
    serve.add_argument("--metrics-listen", help="/metrics address (default 0.0.0.0:8080)")
    serve.add_argument(
        "--kubeconfig", type=Path, help="kubeconfig file (else $KUBECONFIG, else in-cluster)"
    )
    serve.add_argument(
        "--inventory", type=Path, help="dry-run: read objects from YAML files in DIR"
    )
    serve.add_argument(
        "--fallback-inventory",
        type=Path,
        metavar="DIR",
        help="use the kubeconfig's cluster if reachable, else dry-run from DIR (for local runs)",
    )
    serve.add_argument("--log-format", choices=["json", "console"])
    serve.add_argument("--log-level", choices=["debug", "info", "warning", "error"])
    serve.add_argument(
        "--no-cross-namespace-refs",
        action="store_const",
        const=True,
        help="refuse receiver resources in another namespace",
    )
    serve.add_argument(
        "--no-status",
        dest="write_receiver_status",
        action="store_const",
        const=False,
        help="do not write Receiver status (side-by-side with notification-controller)",
    )
    serve.add_argument("--max-body-bytes", type=int, help="request body limit (default 25 MiB)")
    serve.add_argument(
        "--poll",
        action="store_const",
        const=True,
        help="poll every GitRepository's remote with git ls-remote (run it on one replica only)",
    )
    serve.add_argument("--poll-interval", type=float, metavar="SECONDS", help="default 60")
    serve.add_argument("--poll-concurrency", type=int, help="remotes polled at once (default 16)")


def _send_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    send = sub.add_parser("send", help="sign and send a sample push event")
    send.add_argument("kind", choices=["github", "gitlab", "gitea", "generic", "generic-hmac"])
    send.add_argument(
        "--url", required=True, help="receiver URL, e.g. http://127.0.0.1:9292/hook/<digest>"
    )
    send.add_argument(
        "--secret",
        default=os.environ.get("GITOPS_RECEIVER_SECRET", ""),
        help="shared secret (default: $GITOPS_RECEIVER_SECRET)",
    )
    send.add_argument("--repo", default="https://github.com/example/fleet", help="repository URL")
    send.add_argument("--ref", default="refs/heads/main", help="full ref name that was pushed")
    send.add_argument("--after", default="a" * 40, help="commit SHA after the push")
    send.add_argument("--changed", action="append", default=[], help="a changed file (repeatable)")
    send.add_argument("--event", help="event header value (default: the forge's push event)")


def _routes_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    routes = sub.add_parser(
        "routes",
        help="explain which GitRepositories (and Argo CD objects) a push would reconcile or "
        "refresh, and why not the others",
    )
    routes.add_argument("--repo", required=True, help="repository URL as the forge names it")
    routes.add_argument(
        "--ref", required=True, help="pushed ref: refs/heads/main, refs/tags/v1, or a branch"
    )
    routes.add_argument(
        "--changed", action="append", help="a changed file (repeatable); none: file list unknown"
    )
    routes.add_argument(
        "--default-branch", help="the repository's default branch, as an event names it"
    )
    routes.add_argument("--deleted", action="store_true", help="the push deleted the ref")
    routes.add_argument(
        "--new-ref",
        action="store_true",
        help="the push created the ref (new branch or tag): its file list has no base, so the "
        "service never skips on paths; use it to reproduce the decision for such a push",
    )
    routes.add_argument(
        "--truncated",
        action="store_true",
        help="the forge's commit list was incomplete (GitHub lists at most 2048 commits, GitLab "
        "20; a forced push; a commit without file lists): the service then never skips on "
        "paths, whatever --changed lists",
    )
    routes.add_argument("-o", "--output", choices=["text", "json"], default="text")
    routes.add_argument(
        "--config", type=Path, help="YAML settings file (discovery namespaces, selector)"
    )
    routes.add_argument(
        "--kubeconfig", type=Path, help="kubeconfig file (else $KUBECONFIG, else in-cluster)"
    )
    routes.add_argument(
        "--inventory", type=Path, help="read objects from YAML files in DIR instead"
    )
    routes.add_argument(
        "--label-selector", help="only objects with these labels, as the service watches"
    )


def _deliveries_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    deliveries = sub.add_parser(
        "deliveries",
        help="recent deliveries of one replica and what became of them (the inspector's API)",
    )
    deliveries.add_argument(
        "id", nargs="?", type=int, help="one delivery's id: its objects, decisions and patches"
    )
    deliveries.add_argument(
        "--url",
        default=os.environ.get("GITOPS_RECEIVER_HEALTH_URL", "http://127.0.0.1:9440"),
        help="the replica's health port (default $GITOPS_RECEIVER_HEALTH_URL, else "
        "http://127.0.0.1:9440; in a cluster: kubectl port-forward to a pod's port 9440)",
    )
    deliveries.add_argument("--repo", help="only repositories containing this text")
    deliveries.add_argument("--failed", action="store_true", help="only failed deliveries")
    deliveries.add_argument("--outcome", help="only this outcome (accepted, unauthorized...)")
    deliveries.add_argument("--source", help="only this source type (github, gitlab...)")
    deliveries.add_argument("--limit", type=int, default=50, help="at most this many (50)")
    deliveries.add_argument("-o", "--output", choices=["text", "json"], default="text")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gitops-receiver", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    _serve_parser(sub)
    _send_parser(sub)
    _routes_parser(sub)
    _deliveries_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "serve":
            with asyncio.Runner(loop_factory=_event_loop_factory()) as runner:
                return runner.run(_serve(args))
        if args.command == "routes":
            return asyncio.run(_routes(args))
        if args.command == "deliveries":
            return asyncio.run(_deliveries(args))
        return asyncio.run(_send(args))
    except (ConfigError, OSError) as exc:
        # Start-up errors (a port in use, an unreadable file): one line, never a traceback.
        print(f"gitops-receiver: {logs.redact(str(exc))}", file=sys.stderr)
        return EXIT_CONFIG
    except KeyboardInterrupt:
        return 130


def _event_loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's event loop for the service when it is installed (a runtime dependency, with
    wheels for Linux and macOS): it halves the loop's own cost per request. Else asyncio's."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - platforms without a uvloop wheel
        return None
    return uvloop.new_event_loop


def _settings(args: argparse.Namespace) -> Settings:
    keys = (
        "listen",
        "health_listen",
        "metrics_listen",
        "kubeconfig",
        "inventory",
        "log_format",
        "log_level",
        "no_cross_namespace_refs",
        "write_receiver_status",
        "max_body_bytes",
    )
    overrides: dict[str, Any] = {key: getattr(args, key) for key in keys}
    poll = {
        "enabled": args.poll,
        "interval_s": args.poll_interval,
        "concurrency": args.poll_concurrency,
    }
    settings = load(config_file=args.config, overrides=overrides)
    poll_overrides = {key: value for key, value in poll.items() if value is not None}
    if not poll_overrides:
        return settings
    merged = {**settings.poll.model_dump(), **poll_overrides}
    return load(config_file=args.config, overrides={**overrides, "poll": merged})


async def _serve(args: argparse.Namespace) -> int:
    settings = _settings(args)
    logs.configure(log_format=settings.log_format, log_level=settings.log_level)
    client: KubeClient | None = None
    if settings.inventory is not None:
        log.info("mode", mode="dry-run", inventory=str(settings.inventory))
    elif args.fallback_inventory is not None:
        client, reason = await _reachable_cluster(settings)
        if client is None:
            settings = settings.model_copy(update={"inventory": args.fallback_inventory})
            log.info("mode", mode="dry-run", inventory=str(args.fallback_inventory), reason=reason)
        else:
            log.info("mode", mode="cluster", source=client.source, server=client.server)
    else:
        client = await KubeClient.connect(kubeconfig=settings.kubeconfig)
        log.info("mode", mode="cluster", source=client.source, server=client.server)
    app = App(settings, client=client)
    await app.run_until_signal()
    return 0


async def _reachable_cluster(settings: Settings) -> tuple[KubeClient | None, str]:
    """The kubeconfig's cluster when it answers /version within a few seconds, else why not."""
    kubeconfig = settings.kubeconfig
    if kubeconfig is None and not os.environ.get("KUBECONFIG"):
        default = Path.home() / ".kube" / "config"
        if not default.exists():
            return None, "no kubeconfig found ($KUBECONFIG unset, ~/.kube/config missing)"
        kubeconfig = default
    try:
        client = await KubeClient.connect(kubeconfig=kubeconfig)
    except ConfigError as exc:
        return None, str(exc)
    try:
        await client.get("/version", timeout_s=3)
    except KubeError as exc:
        await client.close()
        return None, f"cluster not reachable: {exc}"
    return client, "reachable"


async def _send(args: argparse.Namespace) -> int:
    kind = "gitlab" if args.kind == "gitlab" else "github"
    body_obj: dict[str, Any] = samples.push_body(
        kind=kind, repo_url=args.repo, ref=args.ref, after=args.after, changed=args.changed
    )
    body = samples.encode(body_obj)
    event = args.event or ("Push Hook" if args.kind == "gitlab" else "push")
    headers = samples.signed_delivery(
        kind=args.kind, secret=args.secret, body=body, event=event, delivery_id=str(uuid.uuid4())
    )
    try:
        async with (
            aiohttp.ClientSession() as session,
            session.post(
                args.url, data=body, headers=headers, timeout=aiohttp.ClientTimeout(total=15)
            ) as response,
        ):
            text = await response.text()
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        print(f"gitops-receiver send: cannot reach {args.url}: {exc}", file=sys.stderr)
        return 1
    print(f"HTTP {response.status} {text.strip()}")
    return 0 if response.status < 300 else 1


async def _routes(args: argparse.Namespace) -> int:
    settings = load(
        config_file=args.config,
        overrides={
            "kubeconfig": args.kubeconfig,
            "inventory": args.inventory,
            "log_level": "error",
        },
    )
    logs.configure(log_format="console", log_level="error")
    selector = args.label_selector or settings.discovery.label_selector
    repos, argocd_objects = await _routable_objects(settings)
    push = GitPush(
        source="cli",
        event="push",
        repo_urls=(args.repo,),
        ref=args.ref if args.ref.startswith("refs/") else f"refs/heads/{args.ref}",
        deleted=args.deleted,
        default_branch=args.default_branch,
        changed_paths=(
            frozenset(args.changed)
            if args.changed and not (args.new_ref or args.truncated)
            else None
        ),
    )
    try:
        result, records = discovery.route_with_selector(
            repos, push=push, label_selector=selector, argocd_objects=argocd_objects
        )
    except SelectorError as exc:
        raise ConfigError(str(exc)) from None
    if args.output == "json":
        print(json.dumps(explain.render_json(result, push=push, records=records), indent=2))
    else:
        print(explain.render_text(result, push=push, records=records), end="")
    return 0


async def _deliveries(args: argparse.Namespace) -> int:
    base = args.url.rstrip("/")
    if args.id is not None:
        url = f"{base}/api/deliveries/{args.id}"
    else:
        query = {
            "repo": args.repo,
            "outcome": args.outcome,
            "source": args.source,
            "failed": "1" if args.failed else None,
            "limit": str(max(args.limit, 0)),
        }
        url = f"{base}/api/deliveries?" + urlencode({k: v for k, v in query.items() if v})
    try:
        async with (
            aiohttp.ClientSession() as session,
            session.get(url, timeout=aiohttp.ClientTimeout(total=15)) as response,
        ):
            text = await response.text()
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        print(f"gitops-receiver deliveries: cannot reach {base}: {exc}", file=sys.stderr)
        return 1
    try:
        answer = json.loads(text)
    except ValueError:
        answer = None
    if not isinstance(answer, dict) or response.status >= 400:
        error = answer.get("error") if isinstance(answer, dict) else text[:200]
        print(f"gitops-receiver deliveries: HTTP {response.status}: {error}", file=sys.stderr)
        return 1
    if args.output == "json":
        print(json.dumps(answer, indent=2))
    elif args.id is not None:
        print(views.render_detail_text(answer), end="")
    else:
        print(views.render_text(answer), end="")
    return 0


async def _routable_objects(
    settings: Settings,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Every GitRepository, and every Argo CD Application and ApplicationSet (when the cluster
    serves them and `argocd.enabled`), from the inventory or the cluster (in the configured
    namespaces)."""
    argocd_kinds_wanted = set(argocd_kinds.KINDS) if settings.argocd.enabled else set()
    if settings.inventory is not None:
        loaded = inventory.load_objects(settings.inventory)
        repos = [o for o in loaded if o.get("kind") == "GitRepository"]
        return repos, [o for o in loaded if o.get("kind") in argocd_kinds_wanted]
    client = await KubeClient.connect(kubeconfig=settings.kubeconfig)
    try:
        repos = await _list_all(client, resources.GIT_REPOSITORY, settings)
        argocd_objects: list[dict[str, Any]] = []
        if argocd_kinds_wanted:
            for kind in await argocd_kinds.served_kinds(client):
                listed = await _list_all(client, kind, settings)
                argocd_objects.extend({**item, "kind": kind.kind} for item in listed)
        return repos, argocd_objects
    except KubeError as exc:
        raise ConfigError(f"cannot list the objects to route: {exc}") from None
    finally:
        await client.close()


async def _list_all(
    client: KubeClient, resource: resources.ResourceType, settings: Settings
) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for namespace in settings.discovery.namespaces or (None,):
        path = resource.collection_path(namespace=namespace)
        query: dict[str, str] = {"limit": "500"}
        while True:
            page = await client.get(path, query=query)
            found.extend(page.get("items") or [])
            token = (page.get("metadata") or {}).get("continue")
            if not token:
                break
            query = {"limit": "500", "continue": token}
    return found


if __name__ == "__main__":
    sys.exit(main())
