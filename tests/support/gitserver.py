"""Real Git remotes on loopback for the poller's tests and benchmark.

`BareRepo` is a bare repository made with GitPython whose branches and tags tests move with
plumbing (`commit-tree`, `update-ref`, `tag -a`), exactly as a push would leave them.
`GitDaemon` serves a directory of bare repositories with `git daemon` (git://);
`GitHttpServer` serves the same with `git http-backend` behind a tiny aiohttp CGI front that
enforces basic auth or a bearer token and records every request. Test code only; every server
listens on 127.0.0.1 only.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hmac
import os
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import git
from aiohttp import web

# git's well-known empty tree: commits on it need no blobs, which keeps 1,000 repos cheap.
EMPTY_TREE = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"
_IDENTITY = {
    "GIT_AUTHOR_NAME": "poller-test",
    "GIT_AUTHOR_EMAIL": "poller-test@example.invalid",
    "GIT_COMMITTER_NAME": "poller-test",
    "GIT_COMMITTER_EMAIL": "poller-test@example.invalid",
}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class BareRepo:
    """A bare repository under a served root; `advance` and `tag` move its refs."""

    def __init__(self, root: Path, name: str, *, default_branch: str = "master") -> None:
        self.name = name
        self.path = root / f"{name}.git"
        self.repo = git.Repo.init(self.path, bare=True)
        self.repo.git.symbolic_ref("HEAD", f"refs/heads/{default_branch}")
        self._count = 0
        self.advance(default_branch)

    def advance(self, branch: str = "master") -> str:
        """A new commit on `branch` (created if missing); returns its sha."""
        self._count += 1
        parents: list[str] = []
        with contextlib.suppress(git.GitCommandError):
            parents = ["-p", self.repo.git.rev_parse("--verify", f"refs/heads/{branch}")]
        with self.repo.git.custom_environment(**_IDENTITY):
            sha = str(
                self.repo.git.commit_tree(
                    EMPTY_TREE, *parents, "-m", f"{self.name} {branch} #{self._count}"
                )
            )
        self.repo.git.update_ref(f"refs/heads/{branch}", sha)
        return sha

    def tag(self, name: str, *, target: str, annotated: bool = True) -> str:
        """Tag `target`; returns the tag object's sha (annotated) or `target` (lightweight)."""
        if not annotated:
            self.repo.git.update_ref(f"refs/tags/{name}", target)
            return target
        with self.repo.git.custom_environment(**_IDENTITY):
            self.repo.git.tag("-a", name, target, "-m", f"release {name}")
        return str(self.repo.git.rev_parse(f"refs/tags/{name}"))

    def sha(self, ref: str) -> str:
        return str(self.repo.git.rev_parse("--verify", f"{ref}^{{commit}}"))


class GitDaemon:
    """`git daemon --export-all --base-path=<root>` on 127.0.0.1 and a free port."""

    def __init__(self, root: Path, *, max_connections: int = 64) -> None:
        self.root = root
        self.port = free_port()
        self._process = subprocess.Popen(
            [
                "git",
                "daemon",
                "--reuseaddr",
                "--export-all",
                f"--base-path={root}",
                "--listen=127.0.0.1",
                f"--port={self.port}",
                f"--max-connections={max_connections}",
                str(root),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self._wait_listening()

    def url(self, name: str) -> str:
        return f"git://127.0.0.1:{self.port}/{name}.git"

    def close(self) -> None:
        self._process.terminate()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait(timeout=10)

    def _wait_listening(self) -> None:
        for _ in range(200):
            if self._process.poll() is not None:
                raise RuntimeError("git daemon exited at start")
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
                if sock.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.05)
        self.close()
        raise RuntimeError("git daemon did not start listening")


@dataclass(frozen=True, slots=True)
class HttpCall:
    """One request the HTTP front saw: method, path + query, and whether auth was accepted."""

    method: str
    path: str
    authorized: bool


@dataclass(slots=True)
class GitHttpServer:
    """`git http-backend` over loopback HTTP; `basic` or `bearer` makes auth mandatory.

    Every request is recorded in `calls`, refused ones included, so tests can count exactly
    how many times the remote was asked.
    """

    root: Path
    basic: tuple[str, str] | None = None
    bearer: str | None = None
    calls: list[HttpCall] = field(default_factory=list)
    port: int = 0
    _runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        sockets = self._runner.addresses
        self.port = int(sockets[0][1])

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/{name}.git"

    def ref_advertisements(self) -> int:
        """How many ref listings (`info/refs` GETs) were answered with auth accepted."""
        return sum(1 for c in self.calls if c.authorized and "/info/refs" in c.path)

    def _authorized(self, header: str | None) -> bool:
        if self.basic is None and self.bearer is None:
            return True
        if header is None:
            return False
        if self.bearer is not None:
            return hmac.compare_digest(header.encode(), f"Bearer {self.bearer}".encode())
        user, password = self.basic or ("", "")
        expected = base64.b64encode(f"{user}:{password}".encode()).decode()
        return hmac.compare_digest(header.encode(), f"Basic {expected}".encode())

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        authorized = self._authorized(request.headers.get("Authorization"))
        self.calls.append(HttpCall(request.method, request.path_qs, authorized))
        if not authorized:
            scheme = "Bearer" if self.bearer is not None else 'Basic realm="git"'
            return web.Response(status=401, headers={"WWW-Authenticate": scheme})
        body = await request.read()
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "GIT_PROJECT_ROOT": str(self.root),
            "GIT_HTTP_EXPORT_ALL": "1",
            "REQUEST_METHOD": request.method,
            "PATH_INFO": request.path,
            "QUERY_STRING": request.query_string,
            "CONTENT_TYPE": request.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(len(body)),
            "REMOTE_USER": "poller-test",
            "REMOTE_ADDR": "127.0.0.1",
            "GIT_HTTP_MAX_REQUEST_BUFFER": "10M",
        }
        if "Git-Protocol" in request.headers:
            env["HTTP_GIT_PROTOCOL"] = request.headers["Git-Protocol"]
        process = await asyncio.create_subprocess_exec(
            "git",
            "http-backend",
            env=env,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )
        output, _ = await asyncio.wait_for(process.communicate(body), 30)
        return _cgi_response(output)


def _cgi_response(output: bytes) -> web.Response:
    head, sep, body = output.partition(b"\r\n\r\n")
    if not sep:
        head, _, body = output.partition(b"\n\n")
    status = 200
    headers: dict[str, str] = {}
    for line in head.decode("latin-1").splitlines():
        name, _, value = line.partition(":")
        if name.lower() == "status":
            status = int(value.strip().split()[0])
        elif name:
            headers[name.strip()] = value.strip()
    return web.Response(status=status, body=body, headers=headers)
