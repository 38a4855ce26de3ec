"""Fixtures for the deployment tests: the repository's manifests, parsed once."""

from __future__ import annotations

import pytest
import yaml
from deploy_helpers import BASE_DIR, K8S_DIR, KUBECTL, Manifest, load_manifests, only


@pytest.fixture(scope="session")
def manifests() -> dict[str, list[Manifest]]:
    """deploy/kubernetes/**.yaml (base and optional objects), parsed."""
    return load_manifests(K8S_DIR)


@pytest.fixture(scope="session")
def deployment(manifests: dict[str, list[Manifest]]) -> Manifest:
    """The server's Deployment."""
    return only(manifests, "Deployment")


@pytest.fixture(scope="session")
def container(deployment: Manifest) -> Manifest:
    """The flyteconnect container of the Deployment."""
    containers = deployment["spec"]["template"]["spec"]["containers"]
    assert [c["name"] for c in containers] == ["flyteconnect"]
    result: Manifest = containers[0]
    return result


@pytest.fixture(scope="session")
def kustomization() -> Manifest:
    """deploy/kubernetes/base/kustomization.yaml, parsed."""
    result: Manifest = yaml.safe_load((BASE_DIR / "kustomization.yaml").read_text())
    return result


@pytest.fixture
def kubectl_present() -> None:
    """Fail (not skip) when kubectl, whose built-in kustomize renders the overlays, is missing."""
    if KUBECTL is None:
        pytest.fail("kubectl (with its built-in kustomize) is required to render deploy/kubernetes overlays")
