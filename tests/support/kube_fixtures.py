"""Fixtures for tests that need the real Kubernetes API server (see tests/envtest.py).

`kube_server` starts etcd + kube-apiserver once per session with Flux's real CRDs installed
(built by scripts/build-flux.sh, see tests/support/flux.py; minimal ones only for the image
kinds), or skips with one line when the binaries cannot be had (fails instead under CI=true).
`flux_controllers` runs the real source-controller and kustomize-controller against it.
`namespace` gives each test a fresh namespace, `kube_api` a kubernetes_asyncio ApiClient, and
`fault_proxy` a fault-injecting loopback proxy in front of the API server.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
from kubernetes_asyncio import client, config

from tests import envtest
from tests.support import faultproxy, flux


def _terminal_line(pytest_config: pytest.Config) -> Callable[[str], None]:
    """Print past pytest's capture, so the one-line 'building' notice is seen on first run."""

    def write(line: str) -> None:
        capture = pytest_config.pluginmanager.getplugin("capturemanager")
        reporter = pytest_config.pluginmanager.getplugin("terminalreporter")
        if capture is not None and reporter is not None:
            with capture.global_and_fixture_disabled():
                reporter.write_line(line)
        else:
            print(line)

    return write


def _unavailable(reason: str) -> None:
    if envtest.ci_requires_cluster():
        pytest.fail(f"CI=true but {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def flux_build(request: pytest.FixtureRequest) -> flux.FluxBuild:
    """Flux's controllers, CLI and real CRDs, built once into the cache folder."""
    found = flux.locate_build(notify=_terminal_line(request.config))
    if isinstance(found, str):
        _unavailable(found)
    assert isinstance(found, flux.FluxBuild)
    return found


@pytest.fixture(scope="session")
def kube_server(
    request: pytest.FixtureRequest, flux_build: flux.FluxBuild
) -> Iterator[envtest.KubeTestServer]:
    """A running kube-apiserver + etcd with Flux's CRDs installed, for the whole session."""
    found = envtest.locate_binaries(notify=_terminal_line(request.config))
    if isinstance(found, str):
        _unavailable(found)
    assert isinstance(found, envtest.Binaries)
    with envtest.running_server(binaries=found, crd_dirs=flux.crd_dirs(flux_build)) as server:
        # Where the service's leader Lease lives by default (deploy/ runs it there).
        status, body = server.request(
            "POST", "/api/v1/namespaces", body={"metadata": {"name": "flux-system"}}
        )
        assert status in (201, 409), body
        yield server


@pytest.fixture(scope="session")
def flux_controllers(
    kube_server: envtest.KubeTestServer, flux_build: flux.FluxBuild
) -> Iterator[flux.FluxControllers]:
    """source-controller + kustomize-controller for objects labelled `flux.WATCH_LABEL`."""
    with flux.running_controllers(
        build=flux_build, kubeconfig=kube_server.kubeconfig_path
    ) as controllers:
        yield controllers


@pytest.fixture
def namespace(kube_server: envtest.KubeTestServer) -> Iterator[str]:
    """A fresh namespace (random name) for one test, purged and deleted afterwards."""
    name = kube_server.create_namespace()
    try:
        yield name
    finally:
        kube_server.delete_namespace(name)


@contextlib.asynccontextmanager
async def api_client(kubeconfig_path: Path) -> AsyncIterator[client.ApiClient]:
    """A kubernetes_asyncio ApiClient configured from `kubeconfig_path`, closed on exit."""
    configuration = client.Configuration()
    await config.load_kube_config(
        config_file=str(kubeconfig_path), client_configuration=configuration
    )
    api = client.ApiClient(configuration=configuration)
    try:
        yield api
    finally:
        await api.close()


@pytest.fixture
async def kube_api(kube_server: envtest.KubeTestServer) -> AsyncIterator[client.ApiClient]:
    """A kubernetes_asyncio ApiClient for the test server (admin), closed after the test."""
    async with api_client(kube_server.kubeconfig_path) as api:
        yield api


@pytest.fixture
async def fault_proxy(
    kube_server: envtest.KubeTestServer, tmp_path: Path
) -> AsyncIterator[faultproxy.FaultProxy]:
    """A started FaultProxy in front of `kube_server`; its kubeconfig is `proxy.kubeconfig_path`."""
    proxy = faultproxy.FaultProxy(
        upstream_url=kube_server.url,
        upstream_ca_path=kube_server.ca_path,
        token=kube_server.token,
    )
    await proxy.start()
    proxy.write_kubeconfig(tmp_path / "proxy.kubeconfig")
    try:
        yield proxy
    finally:
        await proxy.stop()


@pytest.fixture
async def proxy_api(fault_proxy: faultproxy.FaultProxy) -> AsyncIterator[client.ApiClient]:
    """A kubernetes_asyncio ApiClient that talks through `fault_proxy`, closed after the test."""
    assert fault_proxy.kubeconfig_path is not None
    async with api_client(fault_proxy.kubeconfig_path) as api:
        yield api
