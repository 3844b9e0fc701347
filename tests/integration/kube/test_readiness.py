"""/readyz answers 503 until every watch has completed its first list, then 200."""

from __future__ import annotations

import aiohttp

from receiver.app import App
from receiver.config import load
from receiver.kube.client import KubeClient
from tests.support import faultproxy
from tests.support.running import LOOPBACK_PORTS, eventually


async def readyz(app: App) -> tuple[int, str]:
    url = f"http://127.0.0.1:{app.ports['health']}/readyz"
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return response.status, await response.text()


async def test_not_ready_while_the_first_list_fails(fault_proxy: faultproxy.FaultProxy) -> None:
    receivers_list = lambda method, path: method == "GET" and path.endswith("/receivers")  # noqa: E731
    fault_proxy.fail_next(3, status=500, match=receivers_list)
    settings = load(
        config_file=None, overrides={**LOOPBACK_PORTS, "watch": {"backoff_initial_s": 0.3}}
    )
    app = App(settings, client=await KubeClient.connect(kubeconfig=fault_proxy.kubeconfig_path))
    await app.start()
    try:
        status, text = await readyz(app)
        assert status == 503 and "receivers" in text
        await eventually(lambda: readyz(app), check=lambda answer: answer[0] == 200)
        assert fault_proxy.pending_faults == 0
    finally:
        await app.stop()
