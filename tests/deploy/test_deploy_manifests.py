"""deploy/kubernetes: schema-valid for the Kubernetes versions we support, and wired together correctly."""

from __future__ import annotations

import copy
import os
import socket
from pathlib import Path

import kubernetes_validate
import pytest
import yaml
from deploy_helpers import BASE_DIR, K8S_DIR, Manifest, kustomize, load_manifests, mebibytes, needs_kubectl, only

import flyteconnect
from flyteconnect import secrets

# gRPC probes are GA since 1.27; the newest schema the validator ships covers current clusters.
K8S_VERSIONS = ["1.27", kubernetes_validate.utils.latest_version()]
POD_LABELS = {"app.kubernetes.io/name": "flyteconnect", "app.kubernetes.io/component": "connector-server"}


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail any attempt to open a connection: the validator must work offline."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("network access attempted")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


def schema_objects(manifests: dict[str, list[Manifest]]) -> list[tuple[str, Manifest]]:
    """The objects that have a built-in Kubernetes schema (CRD-based ones such as ServiceMonitor are checked apart)."""
    return [(name, doc) for name, docs in manifests.items() for doc in docs if "coreos.com" not in doc["apiVersion"]]


@pytest.mark.usefixtures("no_network")
@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_every_manifest_is_valid_against_the_kubernetes_schema(
    manifests: dict[str, list[Manifest]], version: str
) -> None:
    objects = schema_objects(manifests)
    assert {doc["kind"] for _, doc in objects} == {
        "Deployment",
        "Service",
        "PodDisruptionBudget",
        "HorizontalPodAutoscaler",
        "Secret",
        "ServiceAccount",
    }
    for name, doc in objects:
        # strict: unknown fields (typos such as `readinesProbe`) are errors, not silently dropped
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as e:
            pytest.fail(f"{name}: {doc['kind']} invalid for Kubernetes {version}: {e.message} at {list(e.path)}")


@pytest.mark.usefixtures("no_network")
def test_the_validator_catches_a_misspelled_probe_field(deployment: Manifest) -> None:
    broken = copy.deepcopy(deployment)
    probe = broken["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]
    probe["grpc"]["prot"] = probe["grpc"].pop("port")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, K8S_VERSIONS[-1], strict=True)


def test_kustomization_lists_every_base_manifest(kustomization: Manifest) -> None:
    base_files = {p.name for p in BASE_DIR.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(kustomization["resources"]) == base_files
    assert kustomization["namespace"] == "flyte"
    # `kubectl apply -k deploy/kubernetes` is the stable release: the base, nothing optional
    top = yaml.safe_load((K8S_DIR / "kustomization.yaml").read_text())
    assert top["resources"] == ["base"]


def test_image_tag_is_the_package_version(kustomization: Manifest, container: Manifest) -> None:
    (image,) = kustomization["images"]
    assert image["name"] == container["image"]
    assert image["newTag"] == flyteconnect.__version__


@needs_kubectl
def test_kustomize_renders_valid_objects_in_the_flyte_namespace() -> None:
    rendered = kustomize(K8S_DIR)
    assert len(rendered) == 6
    for doc in rendered:
        assert doc["metadata"]["namespace"] == "flyte"
        kubernetes_validate.validate(doc, K8S_VERSIONS[-1], strict=True)
    deployment = next(doc for doc in rendered if doc["kind"] == "Deployment")
    image = deployment["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image == f"flyteconnect:{flyteconnect.__version__}"


@needs_kubectl
def test_an_overlay_fills_the_secret_the_deployment_mounts(tmp_path: Path) -> None:
    # The recipe from docs/deploying.md: a secretGenerator in an overlay replaces the empty base Secret by name.
    overlay = tmp_path / "overlay"
    overlay.mkdir()
    (overlay / "secrets.env").write_text("databricks_token=not-a-real-token\n")
    base = os.path.relpath(K8S_DIR, overlay)  # kustomize refuses absolute paths
    (overlay / "kustomization.yaml").write_text(
        yaml.safe_dump(
            {
                "apiVersion": "kustomize.config.k8s.io/v1beta1",
                "kind": "Kustomization",
                "resources": [base],
                "secretGenerator": [{"name": "flyteconnect-secrets", "behavior": "replace", "envs": ["secrets.env"]}],
            }
        )
    )
    rendered = kustomize(overlay)
    secret = only({"out": rendered}, "Secret")
    deployment = only({"out": rendered}, "Deployment")
    assert set(secret["data"]) == {"databricks_token"}
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    assert volumes["secrets"]["secret"]["secretName"] == secret["metadata"]["name"]


def test_probes_call_grpc_health_on_the_grpc_port(container: Manifest, manifests: dict[str, list[Manifest]]) -> None:
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"grpc": 8000, "metrics": 9090}
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        grpc = container[probe]["grpc"]
        assert grpc["port"] == ports["grpc"], probe
        # no service name: Check("") is the server's overall status, SERVING until the drain starts
        assert grpc.get("service", "") == "", probe
    service = only(manifests, "Service")
    service_ports = {p["name"]: p for p in service["spec"]["ports"]}
    assert service_ports["grpc"]["port"] == 8000
    assert service_ports["grpc"]["targetPort"] == "grpc"
    assert service_ports["metrics"]["targetPort"] == "metrics"


def test_service_is_headless_so_grpc_clients_balance_across_pods(manifests: dict[str, list[Manifest]]) -> None:
    assert only(manifests, "Service")["spec"]["clusterIP"] == "None"


def test_selectors_match_the_pod_labels(deployment: Manifest, manifests: dict[str, list[Manifest]]) -> None:
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert pod_labels == POD_LABELS
    assert deployment["spec"]["selector"]["matchLabels"] == pod_labels
    assert only(manifests, "Service")["spec"]["selector"] == pod_labels
    assert only(manifests, "PodDisruptionBudget")["spec"]["selector"]["matchLabels"] == pod_labels
    monitor = only(manifests, "ServiceMonitor")
    assert monitor["spec"]["selector"]["matchLabels"] == only(manifests, "Service")["metadata"]["labels"]
    spread = deployment["spec"]["template"]["spec"]["topologySpreadConstraints"]
    assert all(c["labelSelector"]["matchLabels"] == pod_labels for c in spread)


def test_autoscaler_owns_the_replica_count(deployment: Manifest, manifests: dict[str, list[Manifest]]) -> None:
    hpa = only(manifests, "HorizontalPodAutoscaler")
    target = hpa["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", deployment["metadata"]["name"])
    assert [m["resource"]["name"] for m in hpa["spec"]["metrics"]] == ["cpu"]
    assert "replicas" not in deployment["spec"]  # an apply would otherwise reset what the autoscaler chose
    # the disruption budget leaves a pod serving at the autoscaler's floor
    pdb = only(manifests, "PodDisruptionBudget")
    assert hpa["spec"]["minReplicas"] - pdb["spec"]["maxUnavailable"] >= 1
    # CPU utilization is a share of the request, so a request must be set
    assert "cpu" in deployment["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"]


def test_prometheus_annotations_point_at_the_metrics_port(
    deployment: Manifest, container: Manifest, manifests: dict[str, list[Manifest]]
) -> None:
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    metrics_port = next(p["containerPort"] for p in container["ports"] if p["name"] == "metrics")
    assert annotations == {
        "prometheus.io/scrape": "true",
        "prometheus.io/port": str(metrics_port),
        "prometheus.io/path": "/metrics",
    }
    (endpoint,) = only(manifests, "ServiceMonitor")["spec"]["endpoints"]
    assert (endpoint["port"], endpoint["path"]) == ("metrics", "/metrics")


def test_secret_is_mounted_where_get_secret_reads_files(
    deployment: Manifest, container: Manifest, manifests: dict[str, list[Manifest]]
) -> None:
    # The accessor's default directory (its error no longer names server paths, so read the constant it uses).
    default_dir = secrets.DEFAULT_DIR
    assert default_dir == "/etc/secrets"

    mounts = {m["name"]: m for m in container["volumeMounts"]}
    assert mounts["secrets"]["mountPath"] == default_dir
    assert mounts["secrets"]["readOnly"] is True
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["FLYTE_SECRETS_DEFAULT_DIR"] == default_dir
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    assert volumes["secrets"]["secret"]["secretName"] == only(manifests, "Secret")["metadata"]["name"]
    # files are root-owned: group-readable for the server's fsGroup, nobody else
    pod_security = deployment["spec"]["template"]["spec"]["securityContext"]
    assert volumes["secrets"]["secret"]["defaultMode"] == 0o440
    assert pod_security["fsGroup"] == pod_security["runAsGroup"]


def test_memory_is_sized_from_measured_rss(container: Manifest) -> None:
    resources = container["resources"]
    request, limit = mebibytes(resources["requests"]["memory"]), mebibytes(resources["limits"]["memory"])
    # measured idle RSS ~64 MiB: request above it, limit with head-room for load (docs/deploying.md, "Sizing")
    assert 40 <= request <= 128
    assert limit >= 2 * request


def test_pod_runs_unprivileged(deployment: Manifest, container: Manifest) -> None:
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert pod["automountServiceAccountToken"] is False
    security = container["securityContext"]
    assert security["allowPrivilegeEscalation"] is False
    assert security["readOnlyRootFilesystem"] is True
    assert security["capabilities"]["drop"] == ["ALL"]
    # a read-only root needs a writable /tmp for tempfile users
    assert "/tmp" in {m["mountPath"] for m in container["volumeMounts"]}


@needs_kubectl
def test_optional_manifests_are_outside_the_kustomization() -> None:
    optional = load_manifests(K8S_DIR / "optional")
    assert [doc["kind"] for docs in optional.values() for doc in docs] == ["ServiceMonitor"]
    rendered_kinds = {doc["kind"] for doc in kustomize(K8S_DIR)}
    assert "ServiceMonitor" not in rendered_kinds
