"""KubeClient against the real API server: how its writes are named."""

from __future__ import annotations

from receiver import __version__
from receiver.kube.client import USER_AGENT, KubeClient
from tests import envtest
from tests.support.running import kube

CONFIGMAPS = "/api/v1/namespaces/{ns}/configmaps"


async def test_writes_carry_the_gitops_receiver_user_agent(
    kube_server: envtest.KubeTestServer, namespace: str
) -> None:
    """The API server names a patch's field manager after the User-Agent's first segment, as
    audit logs name the client: both say gitops-receiver, not the generic library."""
    assert f"gitops-receiver/{__version__}" == USER_AGENT
    await kube(
        kube_server,
        "POST",
        CONFIGMAPS.format(ns=namespace),
        body={"metadata": {"name": "ua"}, "data": {"a": "1"}},
    )
    client = await KubeClient.connect(kubeconfig=kube_server.kubeconfig_path)
    try:
        patched = await client.merge_patch(
            f"{CONFIGMAPS.format(ns=namespace)}/ua", {"data": {"b": "2"}}
        )
    finally:
        await client.close()
    owner = {
        entry["manager"]
        for entry in patched["metadata"]["managedFields"]
        if "f:b" in entry.get("fieldsV1", {}).get("f:data", {})
    }
    assert owner == {"gitops-receiver"}
