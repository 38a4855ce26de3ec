"""deploy/kubernetes/canary: a second release that shares nothing routable with the stable one."""

from __future__ import annotations

import shutil
import subprocess

import kubernetes_validate
import pytest
import yaml
from deploy_helpers import K8S_DIR, Manifest, only

pytestmark = pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl (built-in kustomize) is not installed")


def render(directory: str) -> dict[str, list[Manifest]]:
    """kubectl kustomize ``deploy/kubernetes/<directory>``, grouped as one pseudo-file."""
    out = subprocess.run(
        ["kubectl", "kustomize", str(K8S_DIR / directory)], capture_output=True, text=True, timeout=30, check=True
    )
    return {directory: [doc for doc in yaml.safe_load_all(out.stdout) if doc]}


@pytest.fixture(scope="module")
def canary() -> dict[str, list[Manifest]]:
    """The rendered canary overlay."""
    return render("canary")


@pytest.fixture(scope="module")
def stable() -> dict[str, list[Manifest]]:
    """The rendered stable release."""
    return render(".")


def matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    """Whether a Kubernetes equality selector selects ``labels``."""
    return all(labels.get(k) == v for k, v in selector.items())


def test_canary_is_a_valid_deployment_and_service_only(canary: dict[str, list[Manifest]]) -> None:
    kinds = sorted(doc["kind"] for doc in canary["canary"])
    assert kinds == ["Deployment", "Service"]
    for doc in canary["canary"]:
        assert doc["metadata"]["name"] == "flyteconnect-canary"
        assert doc["metadata"]["namespace"] == "flyte"
        kubernetes_validate.validate(doc, kubernetes_validate.utils.latest_version(), strict=True)
    assert only(canary, "Deployment")["spec"]["replicas"] == 1


def test_stable_and_canary_services_select_disjoint_pods(
    canary: dict[str, list[Manifest]], stable: dict[str, list[Manifest]]
) -> None:
    canary_pods = only(canary, "Deployment")["spec"]["template"]["metadata"]["labels"]
    stable_pods = only(stable, "Deployment")["spec"]["template"]["metadata"]["labels"]
    canary_selector = only(canary, "Service")["spec"]["selector"]
    stable_selector = only(stable, "Service")["spec"]["selector"]
    assert matches(canary_selector, canary_pods) and matches(stable_selector, stable_pods)
    assert not matches(canary_selector, stable_pods)
    assert not matches(stable_selector, canary_pods)
    # nor does the stable disruption budget count canary pods
    assert not matches(only(stable, "PodDisruptionBudget")["spec"]["selector"]["matchLabels"], canary_pods)


def test_canary_reuses_the_stable_secret_and_service_account(
    canary: dict[str, list[Manifest]], stable: dict[str, list[Manifest]]
) -> None:
    pod = only(canary, "Deployment")["spec"]["template"]["spec"]
    secret_volume = next(v for v in pod["volumes"] if v["name"] == "secrets")
    assert secret_volume["secret"]["secretName"] == only(stable, "Secret")["metadata"]["name"]
    assert pod["serviceAccountName"] == only(stable, "ServiceAccount")["metadata"]["name"]


def test_canary_serves_only_the_connectors_it_names(canary: dict[str, list[Manifest]]) -> None:
    # Propeller registers every type a deployment advertises; overlapping types would be routed at random.
    args = only(canary, "Deployment")["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--no-entry-points" in args
    assert "--connector" in args
