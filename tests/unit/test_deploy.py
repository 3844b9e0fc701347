"""deploy/ and the Dockerfile agree with the code: ports, probes, config, RBAC, image user.

Static checks only (PyYAML, no cluster): every manifest parses, the Service is a drop-in for
Flux's `webhook-receiver`, the ConfigMap's settings load, the ClusterRole grants every verb
the code uses on every Flux kind it can reconcile. The RBAC is exercised against a real API
server in tests/e2e/test_deploy_rbac_e2e.py.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from receiver.config import Settings, load
from receiver.kube import argocd as argocd_kinds
from receiver.objects import resources

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
NAMESPACE = "flux-system"
CLUSTER_SCOPED = {"ClusterRole", "ClusterRoleBinding"}
CONFIG_DIR = "/etc/gitops-receiver"

Doc = dict[str, Any]


def manifest_files() -> list[Path]:
    return sorted(p for p in DEPLOY.glob("*.yaml") if p.name != "kustomization.yaml")


def documents() -> list[Doc]:
    docs: list[Doc] = []
    for path in manifest_files():
        docs.extend(d for d in yaml.safe_load_all(path.read_text()) if d is not None)
    return docs


def one(kind: str, name: str) -> Doc:
    found = [d for d in documents() if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind}/{name} in deploy/, found {len(found)}"
    return found[0]


def deployment() -> Doc:
    return one("Deployment", "gitops-receiver")


def container() -> Doc:
    containers = deployment()["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    result: Doc = containers[0]
    return result


def container_port(port: int | str) -> int:
    """A Service targetPort or probe port (number or name) as the container's port number."""
    if isinstance(port, int):
        return port
    by_name = {p["name"]: p["containerPort"] for p in container()["ports"]}
    assert port in by_name, f"port name {port!r} is not a container port"
    return int(by_name[port])


def deployed_settings(tmp_path: Path) -> Settings:
    data = one("ConfigMap", "gitops-receiver-config")["data"]
    file = tmp_path / "config.yaml"
    file.write_text(data["config.yaml"])
    return load(config_file=file, overrides={})


def rules() -> Iterator[tuple[str, str, set[str]]]:
    """(apiGroup, resource, verbs) for every pair a ClusterRole rule names."""
    for rule in one("ClusterRole", "gitops-receiver")["rules"]:
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                yield group, resource, set(rule["verbs"])


def verbs_on(group: str, resource: str) -> set[str]:
    granted: set[str] = set()
    for rule_group, rule_resource, verbs in rules():
        if rule_group == group and rule_resource == resource:
            granted |= verbs
    return granted


# --- every file -------------------------------------------------------------------------------


@pytest.mark.parametrize("path", manifest_files(), ids=lambda p: p.name)
def test_every_manifest_parses_and_names_its_namespace(path: Path) -> None:
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    assert docs, f"{path.name} holds no document"
    for doc in docs:
        assert doc["apiVersion"] and doc["kind"] and doc["metadata"]["name"]
        labels = doc["metadata"].get("labels") or {}
        assert labels.get("app.kubernetes.io/name") == "gitops-receiver", doc["kind"]
        if doc["kind"] in CLUSTER_SCOPED:
            assert "namespace" not in doc["metadata"]
        else:
            assert doc["metadata"]["namespace"] == NAMESPACE, doc["kind"]


def test_kustomization_lists_exactly_the_manifests() -> None:
    kustomization = yaml.safe_load((DEPLOY / "kustomization.yaml").read_text())
    assert kustomization["namespace"] == NAMESPACE
    assert sorted(kustomization["resources"]) == [p.name for p in manifest_files()]
    image = container()["image"].split(":")[0]
    assert [i["name"] for i in kustomization["images"]] == [image]


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl not installed")
def test_kustomize_renders_every_document() -> None:
    rendered = subprocess.run(
        ["kubectl", "kustomize", str(DEPLOY)],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    kinds = sorted(d["kind"] for d in yaml.safe_load_all(rendered) if d)
    assert kinds == sorted(d["kind"] for d in documents())


# --- the webhook Service: a drop-in for notification-controller's ------------------------------


def test_webhook_service_is_flux_webhook_receiver_on_port_80() -> None:
    service = one("Service", "webhook-receiver")
    assert service["metadata"]["namespace"] == NAMESPACE
    assert service["spec"].get("type", "ClusterIP") == "ClusterIP"
    [port] = service["spec"]["ports"]
    assert (port["name"], port["port"]) == ("http", 80)
    assert container_port(port["targetPort"]) == 9292 == Settings().listen.port


def test_services_and_network_policy_select_the_pods() -> None:
    pod_labels = deployment()["spec"]["template"]["metadata"]["labels"]
    selector = deployment()["spec"]["selector"]["matchLabels"]
    assert selector.items() <= pod_labels.items()
    for name in ("webhook-receiver", "gitops-receiver-metrics"):
        service_selector = one("Service", name)["spec"]["selector"]
        assert service_selector and service_selector.items() <= pod_labels.items(), name
    policy = one("NetworkPolicy", "gitops-receiver")["spec"]["podSelector"]["matchLabels"]
    assert policy.items() <= pod_labels.items()


def test_metrics_service_is_annotated_for_prometheus() -> None:
    service = one("Service", "gitops-receiver-metrics")
    annotations = service["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/path"] == "/metrics"
    [port] = service["spec"]["ports"]
    assert int(annotations["prometheus.io/port"]) == port["port"]
    assert container_port(port["targetPort"]) == 8080 == Settings().metrics_listen.port


# --- the Deployment and its ConfigMap ---------------------------------------------------------


def test_deployment_ports_and_probes_match_the_config(tmp_path: Path) -> None:
    settings = deployed_settings(tmp_path)
    defaults = Settings()
    ports = {p["containerPort"] for p in container()["ports"]}
    assert ports == {9292, 9440, 8080}
    assert settings.listen.port == defaults.listen.port == 9292
    assert settings.health_listen.port == defaults.health_listen.port == 9440
    assert settings.metrics_listen.port == defaults.metrics_listen.port == 8080
    probes = {
        kind: (
            container()[kind]["httpGet"]["path"],
            container_port(container()[kind]["httpGet"]["port"]),
        )
        for kind in ("startupProbe", "livenessProbe", "readinessProbe")
    }
    assert probes == {
        "startupProbe": ("/healthz", 9440),
        "livenessProbe": ("/healthz", 9440),
        "readinessProbe": ("/readyz", 9440),
    }


def test_configmap_settings_load_with_the_poller_and_leader_election_on(tmp_path: Path) -> None:
    settings = deployed_settings(tmp_path)
    assert settings.poll.enabled is True
    assert settings.leader_election.enabled is True
    lease_rules = one("Role", "gitops-receiver-leader-election")["rules"]
    assert any(
        settings.leader_election.lease_name in r.get("resourceNames", []) for r in lease_rules
    )
    assert settings.log_format == "json"
    assert settings.kubeconfig is None and settings.inventory is None  # in-cluster config
    grace = deployment()["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    assert settings.trigger.drain_timeout_s < grace


def test_deployment_reads_the_configmap_it_mounts() -> None:
    spec = deployment()["spec"]["template"]["spec"]
    assert container()["args"] == ["serve", "--config", f"{CONFIG_DIR}/config.yaml"]
    mounts = {m["mountPath"]: m["name"] for m in container()["volumeMounts"]}
    volumes = {v["name"]: v for v in spec["volumes"]}
    config_volume = volumes[mounts[CONFIG_DIR]]
    assert config_volume["configMap"]["name"] == "gitops-receiver-config"
    assert "config.yaml" in one("ConfigMap", "gitops-receiver-config")["data"]
    assert "emptyDir" in volumes[mounts["/tmp"]]  # HOME and TMPDIR of the image


def test_deployment_runs_two_replicas_with_a_budget_hardened_as_the_image_user() -> None:
    spec = deployment()["spec"]
    assert spec["replicas"] == 2
    budget = one("PodDisruptionBudget", "gitops-receiver")["spec"]
    assert budget["minAvailable"] == 1
    assert budget["selector"]["matchLabels"] == spec["selector"]["matchLabels"]
    env = {e["name"]: e["valueFrom"]["fieldRef"]["fieldPath"] for e in container()["env"]}
    assert env == {"POD_NAME": "metadata.name", "POD_NAMESPACE": "metadata.namespace"}
    pod = spec["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    security = container()["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]
    assert str(pod["securityContext"]["runAsUser"]) == dockerfile_instruction("USER").split(":")[0]
    requests, limits = container()["resources"]["requests"], container()["resources"]["limits"]
    assert {"cpu", "memory"} <= requests.keys() and "memory" in limits


# --- RBAC ---------------------------------------------------------------------------------------


def test_cluster_role_grants_what_the_code_calls() -> None:
    group = resources.NOTIFICATION_GROUP
    assert {"list", "watch"} <= verbs_on(group, resources.RECEIVER.plural)
    assert "patch" in verbs_on(group, f"{resources.RECEIVER.plural}/status")
    assert {"list", "watch"} <= verbs_on("", resources.SECRET.plural)
    for kind, (api_group, plural, _) in resources.FLUX_KINDS.items():
        # get: a Receiver with a CEL filter reads each object it names (filtering.py).
        assert {"get", "list", "watch", "patch"} <= verbs_on(api_group, plural), kind
    assert verbs_on("", "events") == {"create"}  # ReconcileRequested (kube/recorder.py)
    for kind in argocd_kinds.KINDS.values():
        assert {"list", "watch", "patch"} <= verbs_on(kind.group, kind.plural), kind.kind


def test_cluster_role_grants_nothing_more() -> None:
    allowed = {("", "secrets"), ("notification.toolkit.fluxcd.io", "receivers")}
    allowed |= {("notification.toolkit.fluxcd.io", "receivers/status")}
    allowed |= {(group, plural) for group, plural, _ in resources.FLUX_KINDS.values()}
    allowed |= {(kind.group, kind.plural) for kind in argocd_kinds.KINDS.values()}
    for group, resource, verbs in rules():
        if (group, resource) == ("", "events"):
            assert verbs == {"create"}, verbs
            continue
        assert (group, resource) in allowed, (group, resource)
        assert verbs <= {"get", "list", "watch", "patch"}, (resource, verbs)
        flux = {(g, p) for g, p, _ in resources.FLUX_KINDS.values()}
        if (group, resource) not in flux | {("", "secrets")}:
            assert "get" not in verbs, (resource, verbs)
    assert verbs_on("", "secrets") == {"get", "list", "watch"}  # get: a newly referenced one
    assert verbs_on("notification.toolkit.fluxcd.io", "receivers/status") == {"patch"}
    assert "nonResourceURLs" not in str(one("ClusterRole", "gitops-receiver"))


def test_lease_role_grants_only_the_leader_lease() -> None:
    role = one("Role", "gitops-receiver-leader-election")
    assert role["metadata"]["namespace"] == NAMESPACE
    for rule in role["rules"]:
        assert rule["apiGroups"] == ["coordination.k8s.io"] and rule["resources"] == ["leases"]
        assert set(rule["verbs"]) <= {"create", "get", "patch"}
        if set(rule["verbs"]) != {"create"}:
            assert rule["resourceNames"] == ["gitops-receiver-leader"]
    binding = one("RoleBinding", "gitops-receiver-leader-election")
    account = deployment()["spec"]["template"]["spec"]["serviceAccountName"]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": account, "namespace": NAMESPACE}
    ]


def test_binding_gives_the_role_to_the_deployment_service_account() -> None:
    binding = one("ClusterRoleBinding", "gitops-receiver")
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "ClusterRole",
        "name": "gitops-receiver",
    }
    account = deployment()["spec"]["template"]["spec"]["serviceAccountName"]
    one("ServiceAccount", account)
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": account, "namespace": NAMESPACE}
    ]


# --- NetworkPolicy ------------------------------------------------------------------------------


def test_network_policy_opens_webhooks_to_all_and_the_rest_to_the_cluster() -> None:
    spec = one("NetworkPolicy", "gitops-receiver")["spec"]
    assert spec["policyTypes"] == ["Ingress"]
    open_ports = set()
    cluster_ports = set()
    for rule in spec["ingress"]:
        ports = {p["port"] for p in rule["ports"]}
        if "from" in rule:
            assert rule["from"] == [{"namespaceSelector": {}}]
            cluster_ports |= ports
        else:
            open_ports |= ports
    assert open_ports == {9292}
    assert cluster_ports == {9440, 8080}


# --- Dockerfile ---------------------------------------------------------------------------------


def dockerfile_instruction(name: str) -> str:
    """The argument of the last `name` instruction (the runtime stage's)."""
    lines = (ROOT / "Dockerfile").read_text().splitlines()
    found = [line.split(None, 1)[1] for line in lines if line.startswith(f"{name} ")]
    assert found, f"no {name} in Dockerfile"
    return found[-1].strip()


def test_dockerfile_runs_the_console_script_as_non_root_on_the_default_ports() -> None:
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert dockerfile_instruction("ENTRYPOINT") == '["gitops-receiver"]'
    assert "gitops-receiver" in scripts
    assert dockerfile_instruction("CMD") == '["serve"]'
    assert dockerfile_instruction("USER") == "65532:65532"
    assert set(dockerfile_instruction("EXPOSE").split()) == {"9292", "9440", "8080"}
    text = (ROOT / "Dockerfile").read_text()
    assert re.search(r"FROM \$\{PYTHON_IMAGE\} AS build", text)
    assert "ARG PYTHON_IMAGE=python:3.11-slim" in text
    assert "HOME=/tmp" in text and "TMPDIR=/tmp" in text
    assert "[dev]" not in text  # no dev extras in the image


def test_dockerignore_lets_the_build_inputs_through() -> None:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    assert lines[lines.index("*") :].count("*") == 1
    for needed in ("!requirements/runtime.txt", "!pyproject.toml", "!README.md", "!receiver/"):
        assert needed in lines
    copied = re.findall(r"^COPY (?!--from)(.+) \S+$", (ROOT / "Dockerfile").read_text(), re.M)
    assert copied == ["requirements/runtime.txt", "pyproject.toml README.md", "receiver"]


def test_dockerfile_installs_the_runtime_lock_with_hashes() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert "--require-hashes --no-deps -r requirements/runtime.txt" in text
    assert "--no-deps --no-build-isolation /src" in text
