"""Flux's own controllers, CLI and CRDs on loopback: the real half of the end-to-end test bed.

`locate_build()` finds what `scripts/build-flux.sh` builds into
`~/.cache/gitops-receiver/flux/<version>/` (source-controller, kustomize-controller,
notification-controller, the `flux` CLI, `crds/`), running the script once when it is missing
(about 12 minutes on 2 cores; it prints one line). With no Go it returns a reason string: the
caller skips with it, or fails under `CI=true`.
`FluxControllers` runs source-controller (artifact storage served on a loopback port) and
kustomize-controller outside a cluster with a kubeconfig, as Flux's docs describe for local
runs. They only see objects labelled `WATCH_LABEL` (Flux's `--watch-label-selector`, meant for
sharding), so the other tests' GitRepositories and Kustomizations stay untouched.
`FleetRepo` is a Git repository of ConfigMaps served over smart HTTP (`git http-backend`, the
real GitRepository CRD refuses `git://`) with a work clone that commits and `git push`es.
Test and benchmark code only; every server listens on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from tests import envtest
from tests.support.gitserver import GitHttpServer

FLUX_VERSION = "v2.9.5"
REPO_ROOT = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = REPO_ROOT / "scripts" / "build-flux.sh"
BINARIES = ("source-controller", "kustomize-controller", "notification-controller", "flux")
WATCH_LABEL = ("gitops-receiver.test/flux", "real")
RUNTIME_NAMESPACE = "flux-system"
START_TIMEOUT_S = 60.0
LOG_TAIL_LINES = 40
_IDENTITY = {
    "GIT_AUTHOR_NAME": "fleet-test",
    "GIT_AUTHOR_EMAIL": "fleet-test@example.invalid",
    "GIT_COMMITTER_NAME": "fleet-test",
    "GIT_COMMITTER_EMAIL": "fleet-test@example.invalid",
}


@dataclass(frozen=True, slots=True)
class FluxBuild:
    """The folder `scripts/build-flux.sh` fills: one binary per name in BINARIES, and crds/."""

    folder: Path

    def binary(self, name: str) -> Path:
        return self.folder / name

    @property
    def crd_dir(self) -> Path:
        return self.folder / "crds"


def cache_folder() -> Path:
    """Where scripts/build-flux.sh builds (same rules as the script and tests/envtest.py)."""
    return envtest.cache_folder().parent.parent / "flux" / FLUX_VERSION


def _complete(folder: Path) -> bool:
    return (folder / "versions").is_file() and all(
        os.access(folder / name, os.X_OK) for name in BINARIES
    )


def locate_build(*, notify: Callable[[str], None]) -> FluxBuild | str:
    """The Flux build (built once if missing); a string is why it cannot be had."""
    folder = cache_folder()
    if _complete(folder):
        return FluxBuild(folder)
    if shutil.which("go") is None:
        return (
            f"no Flux build in {folder} and no Go toolchain to build it: install Go and run "
            f"{BUILD_SCRIPT.relative_to(REPO_ROOT)}"
        )
    proc = subprocess.Popen(
        ["bash", str(BUILD_SCRIPT), str(folder)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=REPO_ROOT,
        env={**os.environ, "FLUX_VERSION": FLUX_VERSION},
    )
    kept: list[str] = []
    assert proc.stdout is not None
    for raw in proc.stdout:
        line = raw.rstrip("\n")
        kept.append(line)
        if line.startswith("build-flux:"):
            notify(line)
    if proc.wait() != 0 or not _complete(folder):
        tail = "\n".join(kept[-LOG_TAIL_LINES:])
        raise envtest.EnvtestError(f"{BUILD_SCRIPT.name} failed (exit {proc.returncode}):\n{tail}")
    return FluxBuild(folder)


def crd_dirs(build: FluxBuild) -> list[Path]:
    """Real CRDs first; the minimal ones only for kinds no real CRD exists for here (image)."""
    return [build.crd_dir, envtest.MINIMAL_CRD_DIR]


def labels() -> dict[str, str]:
    """The label that puts an object in front of the test bed's Flux controllers."""
    return {WATCH_LABEL[0]: WATCH_LABEL[1]}


# -- controllers ------------------------------------------------------------------------------


@dataclass(slots=True)
class _Process:
    name: str
    process: subprocess.Popen[bytes]
    log_path: Path
    health_port: int


class FluxControllers:
    """source-controller and kustomize-controller against one API server (see module doc)."""

    def __init__(
        self,
        *,
        build: FluxBuild,
        kubeconfig: Path,
        watch_label: tuple[str, str] | None = WATCH_LABEL,
        extra_args: Mapping[str, list[str]] | None = None,
    ) -> None:
        self.build = build
        self.kubeconfig = kubeconfig
        self.watch_label = watch_label
        self.extra_args = dict(extra_args or {})
        self.work_dir = Path(tempfile.mkdtemp(prefix="gitops-receiver-flux-"))
        self.storage_port = 0
        self._processes: list[_Process] = []

    def start(self) -> None:
        try:
            self.storage_port = envtest.free_port()
            storage = f"127.0.0.1:{self.storage_port}"
            (self.work_dir / "storage").mkdir()
            self._start(
                "source-controller",
                [
                    f"--storage-path={self.work_dir / 'storage'}",
                    f"--storage-addr={storage}",
                    f"--storage-adv-addr={storage}",
                ],
            )
            self._start("kustomize-controller", ["--no-remote-bases=true"])
        except BaseException:
            self.stop()
            raise

    def start_notification_controller(self) -> int:
        """notification-controller with its receiver on a loopback port; returns that port."""
        port = envtest.free_port()
        self._start(
            "notification-controller",
            [f"--receiverAddr=127.0.0.1:{port}", f"--events-addr=127.0.0.1:{envtest.free_port()}"],
            label=False,
        )
        return port

    def _start(self, name: str, args: list[str], *, label: bool = True) -> None:
        health_port = envtest.free_port()
        log_path = self.work_dir / f"{name}.log"
        command = [
            str(self.build.binary(name)),
            "--enable-leader-election=false",
            f"--metrics-addr=127.0.0.1:{envtest.free_port()}",
            f"--health-addr=127.0.0.1:{health_port}",
            "--log-level=info",
            *args,
            *self.extra_args.get(name, []),
        ]
        if label and self.watch_label is not None:
            command.append(f"--watch-label-selector={self.watch_label[0]}={self.watch_label[1]}")
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.work_dir),
            "KUBECONFIG": str(self.kubeconfig),
            "RUNTIME_NAMESPACE": RUNTIME_NAMESPACE,
        }
        process = envtest.spawn(command, log_path=log_path, env=env)
        entry = _Process(name, process, log_path, health_port)
        self._processes.append(entry)
        self._wait_healthy(entry)

    def _wait_healthy(self, entry: _Process) -> None:
        probe = envtest.KubeHttp(
            url=f"http://127.0.0.1:{entry.health_port}", token="", ca_path=None
        )
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if entry.process.poll() is not None:
                break
            with contextlib.suppress(OSError):
                if probe.request("GET", "/readyz", timeout_s=2)[0] == 200:
                    return
            time.sleep(0.2)
        raise envtest.EnvtestError(
            f"{entry.name} did not become ready:\n{self.log_tail(entry.name)}"
        )

    def log_tail(self, name: str, lines: int = LOG_TAIL_LINES) -> str:
        path = self.work_dir / f"{name}.log"
        with contextlib.suppress(OSError):
            return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
        return "(no log)"

    def stop(self) -> None:
        for entry in reversed(self._processes):
            if entry.process.poll() is None:
                entry.process.terminate()
                try:
                    entry.process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    entry.process.kill()
                    entry.process.wait(timeout=10)
        self._processes.clear()
        shutil.rmtree(self.work_dir, ignore_errors=True)


@contextlib.contextmanager
def running_controllers(*, build: FluxBuild, kubeconfig: Path) -> Iterator[FluxControllers]:
    controllers = FluxControllers(build=build, kubeconfig=kubeconfig)
    try:
        controllers.start()
        yield controllers
    finally:
        controllers.stop()


def run_flux_cli(
    build: FluxBuild, *args: str, kubeconfig: Path, timeout_s: float = 60
) -> subprocess.CompletedProcess[str]:
    """The real `flux` CLI against the test API server (blocking: call it from a thread)."""
    return subprocess.run(
        [str(build.binary("flux")), f"--kubeconfig={kubeconfig}", *args],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": tempfile.gettempdir()},
        check=False,
    )


# -- a Git server of ConfigMaps ---------------------------------------------------------------


class ThreadedGitServer:
    """`GitHttpServer` (git http-backend) on its own event loop thread, so blocking callers
    (`git push` from a test, the benchmark) and a session-wide fixture can share it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True, name="git")
        self._thread.start()
        self.server = GitHttpServer(root=root)
        asyncio.run_coroutine_threadsafe(self.server.start(), self._loop).result(timeout=30)

    def url(self, name: str) -> str:
        return self.server.url(name)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(self.server.close(), self._loop).result(timeout=30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()


def configmap(name: str, data: Mapping[str, str]) -> str:
    lines = ["apiVersion: v1", "kind: ConfigMap", "metadata:", f"  name: {name}", "data:"]
    lines += [f'  {key}: "{value}"' for key, value in data.items()]
    return "\n".join(lines) + "\n"


class FleetRepo:
    """A bare repository `<name>.git` under the server root and a work clone that pushes to it.

    `commit` writes files and commits; `push` runs a real `git push` over smart HTTP and
    returns (before, after): what a forge's push webhook carries.
    """

    def __init__(self, *, server: ThreadedGitServer, name: str, branch: str = "main") -> None:
        self.name = name
        self.branch = branch
        self.url = server.url(name)
        self.bare = server.root / f"{name}.git"
        self.work = server.root.parent / f"{name}-work"
        _git("init", "--bare", "--initial-branch", branch, str(self.bare))
        _git("config", "http.receivepack", "true", cwd=self.bare)
        _git("init", "--initial-branch", branch, str(self.work))
        _git("remote", "add", "origin", self.url, cwd=self.work)
        self.head: str | None = None

    def commit(self, files: Mapping[str, str], *, message: str) -> str:
        for path, text in files.items():
            target = self.work / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
        _git("add", "-A", cwd=self.work)
        _git("commit", "--allow-empty", "-q", "-m", message, cwd=self.work)
        return _git("rev-parse", "HEAD", cwd=self.work).strip()

    def push(self) -> tuple[str, str]:
        before = self.head or "0" * 40
        _git("push", "-q", "origin", f"HEAD:refs/heads/{self.branch}", cwd=self.work)
        self.head = _git("rev-parse", "HEAD", cwd=self.work).strip()
        return before, self.head

    async def apush(self) -> tuple[str, str]:
        """`push` from a thread, for async tests."""
        return await asyncio.to_thread(self.push)


def _git(*args: str, cwd: Path | None = None) -> str:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": tempfile.gettempdir(),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_TERMINAL_PROMPT": "0",
        "LC_ALL": "C",
        **_IDENTITY,
    }
    done = subprocess.run(
        ["git", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60, check=False
    )
    if done.returncode != 0:
        print(done.stderr, file=sys.stderr)
        raise RuntimeError(f"git {args[0]} failed ({done.returncode}): {done.stderr.strip()}")
    return done.stdout


# -- Flux objects for the bed -----------------------------------------------------------------

SOURCE_API = "source.toolkit.fluxcd.io/v1"
KUSTOMIZE_API = "kustomize.toolkit.fluxcd.io/v1"


def git_repository(*, name: str, url: str, interval: str = "1m") -> dict[str, object]:
    """A GitRepository on branch main, labelled for the bed's controllers."""
    return {
        "apiVersion": SOURCE_API,
        "kind": "GitRepository",
        "metadata": {"name": name, "labels": labels()},
        "spec": {"interval": interval, "url": url, "ref": {"branch": "main"}, "timeout": "20s"},
    }


def kustomization(
    *, name: str, source: str, target_namespace: str, interval: str = "1m"
) -> dict[str, object]:
    """A Kustomization applying the source's root into `target_namespace` (no prune, so a
    deleted test namespace never waits on a finalizer that prunes)."""
    return {
        "apiVersion": KUSTOMIZE_API,
        "kind": "Kustomization",
        "metadata": {"name": name, "labels": labels()},
        "spec": {
            "interval": interval,
            "path": "./",
            "prune": False,
            "timeout": "30s",
            "retryInterval": "5s",
            "targetNamespace": target_namespace,
            "sourceRef": {"kind": "GitRepository", "name": source},
        },
    }


def push_payload(
    *, kind: str, url: str, project: str, before: str, after: str
) -> dict[str, object]:
    """A push as the forge sends it, naming the repository by the URL Flux clones."""
    commit = {"id": after, "added": [], "modified": ["app.yaml"], "removed": []}
    if kind == "gitlab":
        return {
            "object_kind": "push",
            "ref": "refs/heads/main",
            "before": before,
            "after": after,
            "checkout_sha": after,
            "project": {
                "path_with_namespace": project,
                "git_http_url": url,
                "web_url": url.removesuffix(".git"),
                "default_branch": "main",
            },
            "commits": [commit],
            "total_commits_count": 1,
        }
    return {
        "ref": "refs/heads/main",
        "before": before,
        "after": after,
        "created": False,
        "deleted": False,
        "forced": False,
        "repository": {
            "name": project.rsplit("/", 1)[-1],
            "full_name": project,
            "clone_url": url,
            "html_url": url.removesuffix(".git"),
            "default_branch": "main",
        },
        "commits": [commit],
        "head_commit": commit,
    }


def applied_revision(obj: Mapping[str, object]) -> str | None:
    """`status.lastAppliedRevision` of a Kustomization when it is Ready=True, else None."""
    status = obj.get("status")
    if not isinstance(status, Mapping):
        return None
    conditions = status.get("conditions")
    ready = (
        [
            c
            for c in conditions
            if isinstance(conditions, list) and isinstance(c, Mapping) and c.get("type") == "Ready"
        ]
        if isinstance(conditions, list)
        else []
    )
    if not ready or ready[0].get("status") != "True":
        return None
    revision = status.get("lastAppliedRevision")
    return revision if isinstance(revision, str) else None


def artifact(*, revision: str, name: str) -> dict[str, str]:
    """A `status.artifact` the real GitRepository CRD accepts (every required field)."""
    return {
        "revision": revision,
        "digest": "sha256:" + "0" * 64,
        "path": f"gitrepository/{name}/artifact.tar.gz",
        "url": f"http://source-controller.invalid/gitrepository/{name}/artifact.tar.gz",
        "lastUpdateTime": "2026-01-01T00:00:00Z",
    }
