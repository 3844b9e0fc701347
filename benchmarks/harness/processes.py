"""Child processes of a benchmark: start pinned, measure (CPU, run-queue wait, RSS), stop.

Servers under test run on CPU 0; the load generator, the API server, etcd and the driver on
CPU 1 while a row is measured (`pin`), so the server's figures are one core's. Every child is
killed when the driver ends (also on Ctrl-C, or if the driver dies: PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp

from tests import envtest

REPO_ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable
Process = subprocess.Popen[bytes]
SERVER_CPU, OTHERS_CPU = "0", "1"

START_CPUS = frozenset(os.sched_getaffinity(0))


def can_pin() -> bool:
    return shutil.which("taskset") is not None and {0, 1} <= START_CPUS


def pin(pid: int, cpus: str) -> None:
    """Move every thread of `pid` to `cpus` (no-op where pinning is unavailable)."""
    if can_pin():
        subprocess.run(
            ["taskset", "-a", "-p", "-c", cpus, str(pid)],
            check=False,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )


class Children:
    """Every process this driver starts; `stop_all` ends them (SIGTERM, then SIGKILL)."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(
        self, args: list[str], *, log: Path, cpus: str | None, env: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        if cpus is not None and can_pin():
            args = ["taskset", "-c", cpus, *args]
        with log.open("ab") as out:
            proc = subprocess.Popen(
                args,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=REPO_ROOT,
                env=env,
                preexec_fn=envtest._die_with_parent,
            )
        self.procs.append(proc)
        return proc

    @staticmethod
    def stop(proc: subprocess.Popen[bytes]) -> None:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)

    def stop_all(self) -> None:
        for proc in reversed(self.procs):
            with contextlib.suppress(Exception):
                self.stop(proc)
        self.procs.clear()


def log_tail(path: Path, *, lines: int = 15) -> str:
    """The last `lines` lines of a file (all of it when `lines` is 0)."""
    text = path.read_text(errors="replace")
    return "\n".join(text.splitlines()[-lines:]) if lines else text


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds of the processes (all threads) so far; gone ones count 0."""
    total = 0.0
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def runqueue_wait_seconds(pid: int) -> float:
    """Seconds the threads of `pid` were runnable but waiting for a CPU (schedstat field 2)."""
    total = 0
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(OSError, ValueError, IndexError):
                total += int((task / "schedstat").read_text().split()[1])
    return total / 1e9


def rss_mib(pid: int, *, field: str = "VmRSS") -> float:
    """Resident memory of `pid` now (VmRSS) or at its peak so far (field="VmHWM")."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def wait_http(
    url: str, *, proc: subprocess.Popen[bytes], log: Path, timeout_s: float
) -> None:
    """Poll `url` until it answers 200; fail early (with the log tail) if `proc` exits."""
    deadline = time.monotonic() + timeout_s
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=3)) as session:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(
                    f"process exited ({proc.returncode}) before {url}:\n{log_tail(log)}"
                )
            with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                async with session.get(url) as response:
                    if response.status == 200:
                        return
            await asyncio.sleep(0.25)
    raise RuntimeError(f"{url} not ready after {timeout_s:.0f}s")


@contextlib.contextmanager
def work_dir(keep: bool) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="gitops-receiver-bench-"))
    try:
        yield path
    finally:
        if keep:
            print(f"logs kept in {path}")
        else:
            shutil.rmtree(path, ignore_errors=True)
