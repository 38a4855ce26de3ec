"""Fixtures: a real connector server on loopback (its own loop thread) and grpc.aio clients for it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import grpc
import pytest
from flyteidl.service import agent_pb2_grpc

from flyteconnect import ConnectorRegistry
from flyteconnect.server.app import BackgroundServer, ServerConfig, serve_in_thread
from flyteconnect.server.dispatch import DispatchConfig

from . import connectors


def make_config(**dispatch: object) -> ServerConfig:
    """A loopback server on free ports; dispatch settings tuned so failure tests finish fast."""
    settings: dict[str, object] = {"timeout": 5.0, "stall_threshold": 0.2, "transient_backoff": 0.01, "threads": 8}
    settings.update(dispatch)
    return ServerConfig(
        host="127.0.0.1",
        port=0,
        metrics_port=0,
        metrics_host="127.0.0.1",
        protocols=["v1"],
        max_message_size=1024 * 1024,
        grace=5,
        dispatch=DispatchConfig(**settings),  # type: ignore[arg-type]
    )


@pytest.fixture(scope="module")
def server() -> Iterator[BackgroundServer]:
    """One server for a test module, serving every example connector."""
    handle = serve_in_thread(ConnectorRegistry(connectors.ALL), make_config())
    yield handle
    handle.stop()


@dataclass
class Stubs:
    """grpc.aio stubs of the three Flyte 1 services on one channel."""

    channel: grpc.aio.Channel
    async_: agent_pb2_grpc.AsyncAgentServiceStub
    sync: agent_pb2_grpc.SyncAgentServiceStub
    meta: agent_pb2_grpc.AgentMetadataServiceStub


async def open_stubs(address: str) -> Stubs:
    channel = grpc.aio.insecure_channel(address)
    return Stubs(
        channel,
        agent_pb2_grpc.AsyncAgentServiceStub(channel),
        agent_pb2_grpc.SyncAgentServiceStub(channel),
        agent_pb2_grpc.AgentMetadataServiceStub(channel),
    )


@pytest.fixture
async def stubs(server: BackgroundServer) -> AsyncIterator[Stubs]:
    """Client stubs for the module's server."""
    s = await open_stubs(server.address)
    yield s
    await s.channel.close()
