"""docs/deploying.md: its YAML is valid, its Propeller keys exist, its overlays render, its arithmetic holds."""

from __future__ import annotations

import math
import os
import re
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from deploy_helpers import DOCS, K8S_DIR, ROOT, Manifest, code_blocks, kustomize, needs_kubectl, only

# Flyte 1.16 `connector-service` plugin keys (webapi/connector/config.go) and per-deployment keys.
PLUGIN_KEYS = {
    "webApi",
    "resourceConstraints",
    "defaultConnector",
    "connectors",
    "connectorForTaskTypes",
    "supportedTaskTypes",
    "pollInterval",
}
DEPLOYMENT_KEYS = {"endpoint", "insecure", "defaultServiceConfig", "timeouts", "defaultTimeout"}
TIMEOUT_KEYS = {"CreateTask", "GetTask", "DeleteTask", "ExecuteTaskSync", "ListConnectors"}
WEBAPI_KEYS = {"caching", "readRateLimiter", "writeRateLimiter", "resourceQuotas", "resourceMeta"}
CACHING_KEYS = {"resyncInterval", "workers", "size", "maxSystemFailures"}


@pytest.fixture(scope="module")
def yaml_blocks() -> list[Any]:
    """Every YAML code block of the page, parsed (a parse error fails here)."""
    return [yaml.safe_load(block) for block in code_blocks(DOCS.read_text(), "yaml")]


def propeller_configs(blocks: list[Any]) -> list[Manifest]:
    """The `plugins.connector-service` sections among the YAML blocks."""
    return [b["plugins"]["connector-service"] for b in blocks if isinstance(b, dict) and "plugins" in b]


def test_propeller_snippets_use_real_keys(yaml_blocks: list[Any]) -> None:
    configs = propeller_configs(yaml_blocks)
    assert len(configs) == 2  # the full configuration and the canary
    for config in configs:
        assert set(config) <= PLUGIN_KEYS
        deployments = [config["defaultConnector"], *config.get("connectors", {}).values()]
        for deployment in deployments:
            assert set(deployment) <= DEPLOYMENT_KEYS
            assert set(deployment.get("timeouts", {})) <= TIMEOUT_KEYS
        assert set(config.get("webApi", {})) <= WEBAPI_KEYS
        assert set(config.get("webApi", {}).get("caching", {})) <= CACHING_KEYS
        # pins name deployments declared under `connectors` (the default one cannot be named)
        assert set(config.get("connectorForTaskTypes", {}).values()) <= set(config.get("connectors", {}))
    full = next(c for c in yaml_blocks if isinstance(c, dict) and "tasks" in c)
    assert "connector-service" in full["tasks"]["task-plugins"]["enabled-plugins"]


def rendered_services() -> set[str]:
    """`k8s://name.namespace:port` for every Service port the stable and canary releases render."""
    targets = set()
    for directory in (K8S_DIR, K8S_DIR / "canary"):
        for doc in kustomize(directory):
            if doc["kind"] == "Service":
                meta = doc["metadata"]
                targets |= {f"k8s://{meta['name']}.{meta['namespace']}:{p['port']}" for p in doc["spec"]["ports"]}
    return targets


@needs_kubectl
def test_propeller_endpoints_name_services_the_manifests_create(yaml_blocks: list[Any]) -> None:
    services = rendered_services()
    for config in propeller_configs(yaml_blocks):
        for deployment in [config["defaultConnector"], *config.get("connectors", {}).values()]:
            assert deployment["endpoint"] in services


@needs_kubectl
def test_overlay_snippets_render_to_valid_objects(yaml_blocks: list[Any], tmp_path: Path) -> None:
    overlays = [b for b in yaml_blocks if isinstance(b, dict) and b.get("kind") == "Kustomization"]
    assert len(overlays) == 2
    for i, overlay in enumerate(overlays):
        directory = tmp_path / f"overlay{i}"
        directory.mkdir()
        # the snippets sit in a directory next to deploy/; here the base is wherever the repository is
        overlay["resources"] = [os.path.relpath(K8S_DIR, directory) for _ in overlay["resources"]]
        for generator in overlay.get("secretGenerator", []):
            for env_file in generator.get("envs", []):
                (directory / env_file).write_text("databricks_token=not-a-real-token\n")
        (directory / "kustomization.yaml").write_text(yaml.safe_dump(overlay))
        docs = kustomize(directory)
        assert len(docs) == 6
        for doc in docs:
            kubernetes_validate.validate(doc, kubernetes_validate.utils.latest_version(), strict=True)
        if "secretGenerator" in overlay:
            secret = next(d for d in docs if d["kind"] == "Secret")
            assert set(secret["data"]) == {"databricks_token"}


def test_sizing_table_arithmetic(manifests: dict[str, list[Manifest]]) -> None:
    text = DOCS.read_text()
    cpu_per_call = float(re.search(r"With about (\d+) µs of CPU per GetTask", text).group(1)) * 1e-6  # type: ignore[union-attr]
    # the autoscaler's threshold, from the manifests: target utilization x the container's CPU request
    hpa = only(manifests, "HorizontalPodAutoscaler")["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"]
    request = only(manifests, "Deployment")["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"]["cpu"]
    threshold = hpa / 100 * (float(request[:-1]) / 1000 if request.endswith("m") else float(request))
    minimum = only(manifests, "HorizontalPodAutoscaler")["spec"]["minReplicas"]

    rows = re.findall(r"^\| ([\d ]+) \| (\d+) \| (\d+) \| ([\d.]+) \| ([\d.]+) \| (\d+) \|$", text, flags=re.M)
    assert len(rows) >= 5
    for tasks, propellers, qps, rate, cores, replicas in rows:
        # GetTask/s = Propellers * min(tasks per Propeller / resyncInterval (30 s), qps)
        n = int(propellers)
        expected_rate = n * min(int(tasks.replace(" ", "")) / n / 30, int(qps))
        assert float(rate) == pytest.approx(expected_rate, abs=0.05), (tasks, propellers, qps)
        assert float(cores) == pytest.approx(expected_rate * cpu_per_call, abs=0.0006), tasks
        assert int(replicas) == max(minimum, math.ceil(expected_rate * cpu_per_call / threshold)), tasks


def test_measured_numbers_cite_runs_that_exist() -> None:
    text = DOCS.read_text()
    assert "*TBD*" not in text
    cited = set(re.findall(r"`(benchmarks/results/[\w.-]+)`", text))
    assert {"benchmarks/results/latest.md", "benchmarks/results/soak.md"} <= cited
    for path in cited:
        assert (ROOT / path).is_file(), path


def test_the_docs_say_the_image_is_untested_here() -> None:
    assert "**Untested here.**" in DOCS.read_text()
