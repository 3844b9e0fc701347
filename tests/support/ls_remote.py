"""`git ls-remote` as an asyncio subprocess, for the poller's tests and benchmark.

The service runs `runner.GitPythonLsRemote` (a bounded thread pool); this backend runs git in
its own process group without threads, so tests and `benchmarks/poller_tick.py --backend
subprocess` need no pool. It classifies failures exactly as the service does.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Mapping

from receiver.errors import RemoteTimeout
from receiver.poller import runner


class SubprocessLsRemote:
    """`git ls-remote` as an asyncio subprocess in its own process group (no threads)."""

    async def __call__(self, *, url: str, env: Mapping[str, str], timeout_s: float) -> str:
        process = await asyncio.create_subprocess_exec(
            "git",
            *runner.LS_REMOTE_ARGS,
            url,
            env={**os.environ, **env},
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,
        )
        try:
            stdout, stderr = await asyncio.wait_for(process.communicate(), timeout_s)
        except TimeoutError as exc:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            await process.wait()
            raise RemoteTimeout("git ls-remote did not finish in time") from exc
        if process.returncode != 0:
            raise runner.classify_failure(
                status=process.returncode or -1, stderr=stderr.decode(errors="replace")
            )
        return stdout.decode(errors="replace")
