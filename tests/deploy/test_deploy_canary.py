"""deploy/kubernetes/canary: a second release that shares nothing routable with the stable one."""

from __future__ import annotations

import kubernetes_validate
import pytest
from deploy_helpers import K8S_DIR, Manifest, kustomize, needs_kubectl, only

pytestmark = needs_kubectl


def render(directory: str) -> dict[str, list[Manifest]]:
    """kubectl kustomize ``deploy/kubernetes/<directory>``, grouped as one pseudo-file."""
    return {directory: kustomize(K8S_DIR / directory)}


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


def test_canary_serves_only_async_connectors_it_names(canary: dict[str, list[Manifest]]) -> None:
    # Propeller registers every type a deployment advertises (overlapping types are routed at random), and calls the
    # types pinned with connectorForTaskTypes as async: the canary must serve a named set of async connectors.
    from flyteconnect.cli.serve import discover, serve

    args = only(canary, "Deployment")["spec"]["template"]["spec"]["containers"][0]["args"]
    params = serve.make_context("serve", list(args)).params
    assert params["connectors"]
    served = discover(params["modules"], params["entry_points"], params["connectors"]).registry.connectors()
    assert served
    assert {c.task_type_name for c in served} <= set(params["connectors"]) | {c.name for c in served}
    assert not [c.name for c in served if c.is_sync]
