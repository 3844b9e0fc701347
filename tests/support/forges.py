"""Emulated GitHub and GitLab commit-status APIs: loopback aiohttp servers that check every call.

Each server listens on 127.0.0.1 only, checks the raw path, the auth header and the JSON body
the way the real API does (401 bad token, 404 unknown project, 422/400 invalid body, GitHub's
140-character description limit, GitLab's "Cannot transition status" 400 when the state it
holds is posted again), records every call, and can be told to answer a given status for the
next N calls (`fail_next`). Only the commit-status endpoints exist: posting one, and listing a
commit's statuses as the real API lists them (GitHub newest first; GitLab the latest per name).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, ClassVar

from aiohttp import web

SHA_RE = re.compile(r"^[0-9a-f]{40}$")


@dataclass(frozen=True, slots=True)
class Call:
    """One request as received, and what the emulator answered."""

    method: str
    raw_path: str
    headers: dict[str, str]
    body: dict[str, Any] | None
    answered: int


@dataclass(frozen=True, slots=True)
class Posted:
    """One status the emulator accepted."""

    project: str
    sha: str
    name: str
    state: str
    description: str
    target_url: str | None
    ref: str | None


@dataclass(slots=True)
class _Fault:
    status: int
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass
class EmulatedForge:
    """Base: the server, the call log and fault injection; subclasses check and answer."""

    token: str
    projects: set[str]
    calls: list[Call] = field(default_factory=list)
    posted: list[Posted] = field(default_factory=list)
    _faults: list[_Fault] = field(default_factory=list)
    _runner: web.AppRunner | None = None
    _port: int = 0

    prefix = ""

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._port}{self.prefix}"

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self._port}"

    def fail_next(
        self,
        count: int,
        status: int,
        *,
        headers: dict[str, str] | None = None,
        body: dict[str, Any] | None = None,
    ) -> None:
        """Answer `status` (with these headers and body) to the next `count` calls."""
        for _ in range(count):
            self._faults.append(
                _Fault(status, dict(headers or {}), body or {"message": f"injected {status}"})
            )

    def states(self, *, name: str | None = None) -> list[str]:
        return [p.state for p in self.posted if name is None or p.name == name]

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self._port = int(self._runner.addresses[0][1])

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        if self._faults:
            fault = self._faults.pop(0)
            response = web.json_response(fault.body, status=fault.status, headers=fault.headers)
        else:
            response = self.answer(request, body)
        self.calls.append(
            Call(request.method, request.raw_path, dict(request.headers), body, response.status)
        )
        return response

    def answer(self, request: web.Request, body: Any) -> web.Response:
        raise NotImplementedError


def _error(status: int, message: Any, **extra: Any) -> web.Response:
    return web.json_response({"message": message, **extra}, status=status)


class EmulatedGitHub(EmulatedForge):
    """`POST /repos/{owner}/{repo}/statuses/{sha}` and
    `GET /repos/{owner}/{repo}/commits/{sha}/statuses` as api.github.com answers them."""

    PATH = re.compile(r"^/repos/(?P<owner>[^/]+)/(?P<repo>[^/]+)/statuses/(?P<sha>[^/]+)$")
    LIST_PATH = re.compile(
        r"^/repos/(?P<owner>[^/]+)/(?P<repo>[^/]+)/commits/(?P<sha>[^/]+)/statuses$"
    )
    STATES = frozenset({"error", "failure", "pending", "success"})

    def answer(self, request: web.Request, body: Any) -> web.Response:
        path = request.raw_path.removeprefix(self.prefix).partition("?")[0]
        listing = self.LIST_PATH.match(path)
        if request.method == "GET" and listing is not None:
            return self._list(request, listing)
        found = self.PATH.match(path)
        if request.method != "POST" or found is None:
            return _error(404, "Not Found")
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return _error(401, "Bad credentials")
        if not request.headers.get("User-Agent"):
            return _error(403, "Request forbidden by administrative rules.")
        project = f"{found['owner']}/{found['repo']}"
        if project not in self.projects:
            return _error(404, "Not Found")
        problems = []
        if not isinstance(body, dict):
            return _error(400, "Problems parsing JSON")
        if body.get("state") not in self.STATES:
            problems.append({"resource": "Status", "field": "state", "code": "invalid"})
        if len(str(body.get("description", ""))) > 140:
            problems.append({"resource": "Status", "field": "description", "code": "custom"})
        if not SHA_RE.match(found["sha"]):
            return _error(422, f"No commit found for SHA: {found['sha']}")
        if problems:
            return _error(422, "Validation Failed", errors=problems)
        self.posted.append(
            Posted(
                project=project,
                sha=found["sha"],
                name=body.get("context", "default"),
                state=body["state"],
                description=body.get("description", ""),
                target_url=body.get("target_url"),
                ref=None,
            )
        )
        return web.json_response(
            {"state": body["state"], "context": body.get("context")}, status=201
        )

    def _list(self, request: web.Request, found: re.Match[str]) -> web.Response:
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return _error(401, "Bad credentials")
        project = f"{found['owner']}/{found['repo']}"
        if project not in self.projects:
            return _error(404, "Not Found")
        mine = [p for p in self.posted if p.project == project and p.sha == found["sha"]]
        items = [
            {"id": number, "state": p.state, "context": p.name, "description": p.description}
            for number, p in enumerate(mine, start=1)
        ]
        return web.json_response(items[::-1])


class EmulatedGitLab(EmulatedForge):
    """`POST /api/v4/projects/:id/statuses/:sha` as GitLab answers it, state machine included."""

    prefix = "/api/v4"
    PATH = re.compile(r"^/projects/(?P<id>[^/]+)/statuses/(?P<sha>[^/]+)$")
    LIST_PATH = re.compile(r"^/projects/(?P<id>[^/]+)/repository/commits/(?P<sha>[^/]+)/statuses$")
    STATES = frozenset({"pending", "running", "success", "failed", "canceled", "skipped"})
    EVENTS: ClassVar[dict[str, str]] = {
        "pending": "enqueue",
        "running": "run",
        "success": "success",
        "failed": "drop",
        "canceled": "cancel",
    }

    def __init__(
        self, *, token: str, projects: set[str], ids: dict[str, str] | None = None
    ) -> None:
        super().__init__(token=token, projects=projects)
        self.ids = ids or {}
        self.current: dict[tuple[str, str, str], str] = {}

    def _project(self, raw_id: str) -> str | None:
        if "/" in raw_id:
            return None
        project = self.ids.get(raw_id) or raw_id.replace("%2F", "/").replace("%2f", "/")
        return project if project in self.projects else None

    def answer(self, request: web.Request, body: Any) -> web.Response:
        path = request.raw_path.removeprefix(self.prefix).partition("?")[0]
        listing = self.LIST_PATH.match(path)
        if request.method == "GET" and listing is not None:
            if request.headers.get("PRIVATE-TOKEN") != self.token:
                return _error(401, "401 Unauthorized")
            listed = self._project(listing["id"])
            if listed is None:
                return _error(404, "404 Project Not Found")
            return web.json_response(
                [
                    {"id": number, "sha": sha, "name": name, "status": state}
                    for number, ((project, sha, name), state) in enumerate(
                        self.current.items(), start=1
                    )
                    if project == listed and sha == listing["sha"]
                ]
            )
        found = self.PATH.match(path)
        if request.method != "POST" or found is None:
            return _error(404, "404 Not Found")
        if request.headers.get("PRIVATE-TOKEN") != self.token:
            return _error(401, "401 Unauthorized")
        project = self._project(found["id"])
        if project is None:
            return _error(404, "404 Project Not Found")
        if not SHA_RE.match(found["sha"]):
            return _error(404, "404 Commit Not Found")
        if not isinstance(body, dict) or body.get("state") not in self.STATES:
            return web.json_response({"error": "state does not have a valid value"}, status=400)
        if len(str(body.get("description", ""))) > 255:
            return _error(400, {"description": ["is too long (maximum is 255 characters)"]})
        name = str(body.get("name") or body.get("context") or "default")
        key = (project, found["sha"], name)
        current = self.current.get(key)
        state = body["state"]
        if current == state and current in ("pending", "running"):
            event = self.EVENTS[state]
            return _error(
                400,
                f"Cannot transition status via :{event} from :{current} "
                f'(Reason(s): Status cannot transition via "{event}")',
            )
        self.current[key] = state
        self.posted.append(
            Posted(
                project=project,
                sha=found["sha"],
                name=name,
                state=state,
                description=body.get("description", ""),
                target_url=body.get("target_url"),
                ref=body.get("ref"),
            )
        )
        return web.json_response({"status": state, "name": name, "sha": found["sha"]}, status=201)
