"""The flyteconnect pytest plugin (entry point ``pytest11``): fixtures to test connectors as Flyte calls them.

Fixtures:

- ``connectors``: what the server serves. By default the connectors installed through the
  ``flyteconnect.connectors`` entry points (what ``flyteconnect serve`` would load); override it in a conftest.py
  to return your own instances.
- ``connector_server``: a running ``ConnectorServer`` for ``connectors`` (Flyte 1 and Flyte 2).
- ``fake_propeller``: a ``FakePropeller`` pointed at ``connector_server``, speaking ``flyteconnect_protocol``.
- ``flyteconnect_protocol``: ``"v1"``, or each of ``"v1"`` and ``"v2"`` for tests marked ``both_protocols``.

Marker ``@pytest.mark.both_protocols``: run the test once per protocol (ids ``[v1]`` and ``[v2]``).

This module imports nothing heavy: grpc and the server load only when a fixture is used.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

PROTOCOLS = ("v1", "v2")


def pytest_configure(config: pytest.Config) -> None:
    """Register the marker (so ``--strict-markers`` accepts it)."""
    config.addinivalue_line(
        "markers", "both_protocols: run the test against the Flyte 1 and the Flyte 2 protocol (flyteconnect)"
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrize ``flyteconnect_protocol`` over both protocols for tests marked ``both_protocols``."""
    if metafunc.definition.get_closest_marker("both_protocols") is None:
        return
    if "flyteconnect_protocol" not in metafunc.fixturenames:
        raise pytest.UsageError(
            f"{metafunc.definition.nodeid}: @pytest.mark.both_protocols needs the fake_propeller "
            "(or flyteconnect_protocol) fixture"
        )
    metafunc.parametrize("flyteconnect_protocol", PROTOCOLS, ids=PROTOCOLS)


@pytest.fixture
def flyteconnect_protocol() -> str:
    """The protocol ``fake_propeller`` speaks: ``"v1"`` unless the test is marked ``both_protocols``."""
    return "v1"


@pytest.fixture
def connectors() -> list[Any]:
    """The connectors ``connector_server`` serves: the installed entry-point connectors unless overridden."""
    from flyteconnect.registry import discover_connectors

    found = discover_connectors()
    if found.failures:
        details = "; ".join(f"{k}: {v}" for k, v in found.failures.items())
        raise pytest.UsageError(f"connector plugins failed to load: {details}")
    return list(found.connectors)


@pytest.fixture
def connector_server(connectors: list[Any]) -> Iterator[Any]:
    """A running ``flyteconnect.testing.ConnectorServer`` for ``connectors`` on a free loopback port."""
    from flyteconnect.testing.server import ConnectorServer

    with ConnectorServer(*connectors) as server:
        yield server


@pytest.fixture
def fake_propeller(connector_server: Any, flyteconnect_protocol: str) -> Any:
    """A ``flyteconnect.testing.FakePropeller`` for ``connector_server`` (fast polling: every 10 ms)."""
    from flyteconnect.testing.propeller import FakePropeller

    return FakePropeller(connector_server.address, protocol=flyteconnect_protocol, poll_interval=0.01)
