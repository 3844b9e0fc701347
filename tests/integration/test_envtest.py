"""Checks the test harness itself: the real API server, the Flux CRDs and the fault proxy.

If these fail, every other integration test is suspect, so they pin down what the harness
promises: admin access, Flux's real CRDs (minimal ones only for the image kinds), a working
status subresource, data that survives an apiserver restart, injected faults, and watches that
stream through the proxy.
"""

from __future__ import annotations

import asyncio
import http.client
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from kubernetes_asyncio import client, watch
from kubernetes_asyncio.client.exceptions import ApiException

from tests import envtest
from tests.support import faultproxy, flux

pytestmark = pytest.mark.integration

RECEIVER_GROUP = "notification.toolkit.fluxcd.io"
MERGE_PATCH = "application/merge-patch+json"
STREAM_BOUND_S = 30  # an upper bound so a broken watch fails the test instead of hanging


def _receiver(name: str, *, receiver_type: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{RECEIVER_GROUP}/v1",
        "kind": "Receiver",
        "metadata": {"name": name},
        "spec": {
            "type": receiver_type,
            "events": ["push"],
            "secretRef": {"name": "webhook-token"},
            "resources": [
                {
                    "apiVersion": "source.toolkit.fluxcd.io/v1",
                    "kind": "GitRepository",
                    "name": "app",
                }
            ],
        },
    }


async def test_server_answers_as_admin(
    kube_server: envtest.KubeTestServer, kube_api: client.ApiClient
) -> None:
    info = await client.VersionApi(kube_api).get_code()
    assert info.git_version == envtest.K8S_VERSION
    review = await client.AuthorizationV1Api(kube_api).create_self_subject_access_review(
        {"spec": {"resourceAttributes": {"verb": "*", "group": "*", "resource": "*"}}}
    )
    assert review.status.allowed is True
    status, _ = envtest.KubeHttp(
        url=kube_server.url, token="wrong", ca_path=kube_server.ca_path
    ).request("GET", "/api/v1/namespaces")
    assert status == 401


def test_every_crd_is_established_and_served(
    kube_server: envtest.KubeTestServer, flux_build: flux.FluxBuild
) -> None:
    crds = envtest.load_crds(flux.crd_dirs(flux_build))
    kinds = {crd.kind for crd in crds}
    assert kinds >= {
        "Receiver",
        "Alert",
        "Provider",
        "GitRepository",
        "OCIRepository",
        "HelmRepository",
        "HelmChart",
        "Bucket",
        "ImageRepository",
        "ImagePolicy",
        "ImageUpdateAutomation",
        "Kustomization",
        "HelmRelease",
    }
    # Only the image kinds fall back to the minimal CRDs: no image controller builds here.
    real = {crd.kind for crd in envtest.load_crds([flux_build.crd_dir])}
    assert kinds - real == {"ImageRepository", "ImagePolicy", "ImageUpdateAutomation"}
    for crd in crds:
        status, body = kube_server.request(
            "GET", f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{crd.name}"
        )
        assert status == 200
        established = [c for c in body["status"]["conditions"] if c["type"] == "Established"]
        assert established[0]["status"] == "True", crd.name
        for version in crd.served_versions:
            status, _ = kube_server.request("GET", f"/apis/{crd.group}/{version}/{crd.plural}")
            assert status == 200, f"{crd.plural} {version}"


async def test_receiver_with_unknown_type_is_rejected(
    kube_api: client.ApiClient, namespace: str
) -> None:
    custom = client.CustomObjectsApi(kube_api)
    with pytest.raises(ApiException) as rejected:
        await custom.create_namespaced_custom_object(
            RECEIVER_GROUP, "v1", namespace, "receivers", _receiver("bad", receiver_type="svn")
        )
    assert rejected.value.status == 422
    assert "spec.type" in rejected.value.body
    assert "Unsupported value" in rejected.value.body

    created = await custom.create_namespaced_custom_object(
        RECEIVER_GROUP, "v1", namespace, "receivers", _receiver("good", receiver_type="github")
    )
    assert created["spec"]["resources"][0]["name"] == "app"


async def test_receiver_status_goes_through_the_status_subresource(
    kube_api: client.ApiClient, namespace: str
) -> None:
    custom = client.CustomObjectsApi(kube_api)
    created = await custom.create_namespaced_custom_object(
        RECEIVER_GROUP, "v1", namespace, "receivers", _receiver("r1", receiver_type="gitlab")
    )
    assert "webhookPath" not in created.get("status", {})  # the real CRD defaults a status
    condition = {
        "type": "Ready",
        "status": "True",
        "reason": "Succeeded",
        "message": "Receiver initialized for path: /hook/abc",
        "lastTransitionTime": "2025-01-01T00:00:00Z",
        "observedGeneration": created["metadata"]["generation"],
    }
    patch = {
        "spec": {"type": "generic"},  # the status endpoint must ignore spec changes
        "status": {
            "webhookPath": "/hook/abc",
            "observedGeneration": created["metadata"]["generation"],
            "conditions": [condition],
        },
    }
    await custom.patch_namespaced_custom_object_status(
        RECEIVER_GROUP, "v1", namespace, "receivers", "r1", patch, _content_type=MERGE_PATCH
    )
    stored = await custom.get_namespaced_custom_object(
        RECEIVER_GROUP, "v1", namespace, "receivers", "r1"
    )
    assert stored["status"]["webhookPath"] == "/hook/abc"
    assert stored["status"]["conditions"] == [condition]
    assert stored["spec"]["type"] == "gitlab"

    # And the main resource ignores status: a spec patch with a status leaves it alone.
    await custom.patch_namespaced_custom_object(
        RECEIVER_GROUP,
        "v1",
        namespace,
        "receivers",
        "r1",
        {"spec": {"suspend": True}, "status": {"webhookPath": "/hook/other"}},
        _content_type=MERGE_PATCH,
    )
    stored = await custom.get_namespaced_custom_object(
        RECEIVER_GROUP, "v1", namespace, "receivers", "r1"
    )
    assert stored["spec"]["suspend"] is True
    assert stored["status"]["webhookPath"] == "/hook/abc"


def test_apiserver_restart_keeps_data_and_port(
    kube_server: envtest.KubeTestServer, namespace: str
) -> None:
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    status, created = kube_server.request(
        "POST", path, body={"metadata": {"name": "survivor"}, "data": {"k": "v"}}
    )
    assert status == 201
    url_before = kube_server.url

    kube_server.stop_apiserver()
    with pytest.raises((OSError, http.client.HTTPException)):
        kube_server.request("GET", f"{path}/survivor", timeout_s=2)
    kube_server.start_apiserver()

    assert kube_server.url == url_before
    status, fetched = kube_server.request("GET", f"{path}/survivor")
    assert status == 200
    assert fetched["metadata"]["uid"] == created["metadata"]["uid"]
    assert fetched["data"] == {"k": "v"}


async def test_proxy_injects_a_500_then_passes_through(
    fault_proxy: faultproxy.FaultProxy, proxy_api: client.ApiClient, namespace: str
) -> None:
    core = client.CoreV1Api(proxy_api)
    fault_proxy.fail_next(1, status=500, match=lambda method, path: path.endswith("/configmaps"))
    fault_proxy.fail_next(1, status=429, retry_after=3, match=lambda method, path: method == "POST")

    with pytest.raises(ApiException) as failed:
        await core.list_namespaced_config_map(namespace)
    assert failed.value.status == 500
    with pytest.raises(ApiException) as throttled:
        await core.create_namespaced_config_map(namespace, {"metadata": {"name": "cm"}})
    assert throttled.value.status == 429
    assert throttled.value.headers["Retry-After"] == "3"
    assert fault_proxy.pending_faults == 0

    await core.create_namespaced_config_map(namespace, {"metadata": {"name": "cm"}})
    listed = await core.list_namespaced_config_map(namespace)
    assert [item.metadata.name for item in listed.items] == ["cm"]

    seen = [(r.method, r.path.rsplit("/", 1)[-1], r.injected_status) for r in fault_proxy.requests]
    assert seen == [
        ("GET", "configmaps", 500),
        ("POST", "configmaps", 429),
        ("POST", "configmaps", None),
        ("GET", "configmaps", None),
    ]
    posted = fault_proxy.requests[2]
    assert posted.content_type is not None and posted.content_type.startswith("application/json")
    assert posted.json()["metadata"]["name"] == "cm"


async def test_watch_streams_through_the_proxy(
    fault_proxy: faultproxy.FaultProxy,
    proxy_api: client.ApiClient,
    kube_api: client.ApiClient,
    namespace: str,
) -> None:
    proxied = client.CoreV1Api(proxy_api)
    direct = client.CoreV1Api(kube_api)
    listed = await proxied.list_namespaced_config_map(namespace)
    await direct.create_namespaced_config_map(namespace, {"metadata": {"name": "first"}})

    names: list[tuple[str, str]] = []
    async with asyncio.timeout(STREAM_BOUND_S):
        async with watch.Watch().stream(
            proxied.list_namespaced_config_map,
            namespace,
            resource_version=listed.metadata.resource_version,
            timeout_seconds=STREAM_BOUND_S,
        ) as stream:
            async for event in stream:
                names.append((event["type"], event["object"].metadata.name))
                if len(names) == 1:
                    # Only created after the first event arrived: it must come live.
                    await direct.create_namespaced_config_map(
                        namespace, {"metadata": {"name": "second"}}
                    )
                if len(names) == 2:
                    break

    assert names == [("ADDED", "first"), ("ADDED", "second")]
    watches = [r for r in fault_proxy.requests if r.query.get("watch") in ("true", "True", "1")]
    assert len(watches) == 1
    assert watches[0].query["resourceVersion"] == listed.metadata.resource_version


async def _open_raw_watch(
    proxy: faultproxy.FaultProxy, proxied: client.CoreV1Api, namespace: str
) -> aiohttp.ClientResponse:
    """A ConfigMap watch through the proxy, returned once the proxy is streaming it."""
    listed = await proxied.list_namespaced_config_map(namespace)
    response: aiohttp.ClientResponse = await proxied.list_namespaced_config_map(
        namespace,
        watch=True,
        resource_version=listed.metadata.resource_version,
        timeout_seconds=STREAM_BOUND_S,
        _preload_content=False,
    )
    async with asyncio.timeout(STREAM_BOUND_S):
        await proxy.wait_for_stream()
    return response


async def test_drop_streams_cuts_an_open_watch(
    fault_proxy: faultproxy.FaultProxy, proxy_api: client.ApiClient, namespace: str
) -> None:
    response = await _open_raw_watch(fault_proxy, client.CoreV1Api(proxy_api), namespace)
    async with asyncio.timeout(STREAM_BOUND_S):
        assert await fault_proxy.drop_streams() == 1
        with pytest.raises(aiohttp.ClientPayloadError):
            await response.content.read()
    response.release()


@pytest.mark.parametrize("graceful", [True, False], ids=["sigterm", "sigkill"])
async def test_proxy_answers_503_while_the_apiserver_is_down_and_ends_its_watches(
    kube_server: envtest.KubeTestServer,
    fault_proxy: faultproxy.FaultProxy,
    proxy_api: client.ApiClient,
    namespace: str,
    graceful: bool,
) -> None:
    proxied = client.CoreV1Api(proxy_api)
    watch_response = await _open_raw_watch(fault_proxy, proxied, namespace)
    await asyncio.to_thread(kube_server.stop_apiserver, graceful=graceful)
    try:
        async with asyncio.timeout(STREAM_BOUND_S):
            if graceful:  # the apiserver closes its watches cleanly on SIGTERM
                assert await watch_response.content.read() == b""
            else:  # a killed apiserver breaks the stream, and the proxy passes the break on
                with pytest.raises(aiohttp.ClientPayloadError):
                    await watch_response.content.read()
        watch_response.release()
        with pytest.raises(ApiException) as down:
            await proxied.list_namespaced_config_map(namespace)
        assert down.value.status == 503
    finally:
        await asyncio.to_thread(kube_server.start_apiserver)
    again = await proxied.list_namespaced_config_map(namespace)
    assert again.items == []


def test_delete_namespace_removes_it_and_its_objects(kube_server: envtest.KubeTestServer) -> None:
    name = kube_server.create_namespace()
    status, _ = kube_server.request(
        "POST", f"/api/v1/namespaces/{name}/configmaps", body={"metadata": {"name": "cm"}}
    )
    assert status == 201
    receiver = _receiver("r", receiver_type="generic")
    status, _ = kube_server.request(
        "POST", f"/apis/{RECEIVER_GROUP}/v1/namespaces/{name}/receivers", body=receiver
    )
    assert status == 201

    kube_server.delete_namespace(name)

    assert kube_server.request("GET", f"/api/v1/namespaces/{name}")[0] == 404
    _, receivers = kube_server.request("GET", f"/apis/{RECEIVER_GROUP}/v1/receivers")
    assert name not in {item["metadata"]["namespace"] for item in receivers["items"]}
    _, configmaps = kube_server.request("GET", f"/api/v1/namespaces/{name}/configmaps")
    assert configmaps["items"] == []


def test_a_dying_apiserver_fails_start_with_its_log_tail(
    kube_server: envtest.KubeTestServer, tmp_path: Path
) -> None:
    fake = tmp_path / "assets"
    fake.mkdir()
    (fake / "etcd").symlink_to(kube_server.binaries.etcd)
    script = fake / "kube-apiserver"
    script.write_text("#!/bin/sh\necho 'E0101 flag provided but not defined: -bogus' >&2\nexit 7\n")
    script.chmod(0o755)
    broken = envtest.KubeTestServer(binaries=envtest.Binaries(folder=fake, origin="test"))

    with pytest.raises(envtest.EnvtestError) as failed:
        broken.start()

    message = str(failed.value)
    assert "kube-apiserver /readyz: process exited with 7" in message
    assert "flag provided but not defined: -bogus" in message
    assert broken.work_dir is None  # start() cleaned up after itself
