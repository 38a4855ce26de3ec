"""ConnectorServer: the real server, in a test, with its own registry."""

from __future__ import annotations

import grpc
import httpx
import pytest
from flyteidl.admin import agent_pb2
from flyteidl.service import agent_pb2_grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from flyteconnect import ConnectorRegistry
from flyteconnect.testing import ConnectorServer

from .connectors import ECHO_TASK, EchoConnector, SleepConnector


def test_sync_context_manager_serves_both_protocols_with_health() -> None:
    with ConnectorServer(EchoConnector(), SleepConnector) as server:
        assert server.address == f"127.0.0.1:{server.port}" and server.port > 0
        assert server.protocols == ["v1", "v2"]
        with grpc.insecure_channel(server.address) as channel:
            agents = agent_pb2_grpc.AgentMetadataServiceStub(channel).ListAgents(agent_pb2.ListAgentsRequest())
            health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())
        assert sorted(a.name for a in agents.agents) == ["Echo Connector", "Sleep Connector"]
        assert health.status == health_pb2.HealthCheckResponse.SERVING
        address = server.address
    with grpc.insecure_channel(address) as channel, pytest.raises(grpc.RpcError) as info:
        agent_pb2_grpc.AgentMetadataServiceStub(channel).ListAgents(agent_pb2.ListAgentsRequest(), timeout=1)
    assert info.value.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)


async def test_async_context_manager_runs_on_the_current_loop() -> None:
    async with ConnectorServer(EchoConnector(), protocols=["v1"]) as server:
        assert server.protocols == ["v1"]
        result = await server.propeller().run(ECHO_TASK, {"name": "loop"})
    assert result.outputs == {"greeting": "hello loop"}


def test_own_registry_and_metrics() -> None:
    registry = ConnectorRegistry([EchoConnector()])
    with ConnectorServer(registry, metrics=True) as server:
        assert server.registry is registry and ConnectorRegistry.default() is not registry
        server.propeller().run_sync(ECHO_TASK, {"name": "m"})
        assert server.metrics_port is not None
        text = httpx.get(f"http://127.0.0.1:{server.metrics_port}/metrics").text
    assert "flyte_connector_requests_success_total" in text


def test_misuse_is_reported() -> None:
    with pytest.raises(TypeError, match="no_such_option"):
        ConnectorServer(EchoConnector(), no_such_option=1).start()
    server = ConnectorServer(EchoConnector())
    with pytest.raises(RuntimeError, match="not running"):
        _ = server.address
    with server, pytest.raises(RuntimeError, match="already running"):
        server.start()
