"""`gitops-receiver serve` as a real child process on loopback ports, for end-to-end tests.

Test code only. `serve(...)` starts it with JSON logs on three free loopback ports; `Served`
waits for /readyz, reads its ports, and stops it with SIGTERM (or `kill` for SIGKILL).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from tests import envtest

ROOT = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-m", "receiver.cli"]


class Served:
    def __init__(self, process: subprocess.Popen[str], ports: dict[str, int]) -> None:
        self.process = process
        self.ports = ports

    def url(self, port: str, path: str) -> str:
        return f"http://127.0.0.1:{self.ports[port]}{path}"

    def get(self, port: str, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(self.url(port, path), timeout=5) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()

    def wait_ready(self, timeout_s: float = 30) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"serve exited early: {self.process.communicate()}")
            try:
                if self.get("health", "/readyz")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise AssertionError("serve never became ready")

    def stop(self) -> tuple[int, str]:
        self.process.send_signal(signal.SIGTERM)
        out, _ = self.process.communicate(timeout=30)
        return self.process.returncode, out

    def kill(self) -> str:
        """SIGKILL: no drain, no Lease release; returns what it logged."""
        self.process.kill()
        out, _ = self.process.communicate(timeout=30)
        return out


def serve(*args: str, env: dict[str, str] | None = None) -> Served:
    ports = {
        "webhook": envtest.free_port(),
        "health": envtest.free_port(),
        "metrics": envtest.free_port(),
    }
    command = [
        *CLI,
        "serve",
        "--log-format",
        "json",
        "--listen",
        f"127.0.0.1:{ports['webhook']}",
        "--health-listen",
        f"127.0.0.1:{ports['health']}",
        "--metrics-listen",
        f"127.0.0.1:{ports['metrics']}",
        *args,
    ]
    process = subprocess.Popen(
        command,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, **(env or {})},
    )
    return Served(process, ports)
