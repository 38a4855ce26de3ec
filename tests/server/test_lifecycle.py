"""Server lifecycle: per-loop resources closed on stop, metrics HTTP server stopped off the loop, and
``serve_in_thread`` used as a context manager, twice-entered or restarted."""

from __future__ import annotations

import asyncio
import dataclasses
import threading

import grpc
import pytest
from flyteidl.admin import agent_pb2
from flyteidl.service import agent_pb2_grpc

from flyteconnect import AsyncConnectorBase, ConnectorRegistry, Phase, Resource
from flyteconnect.loops import on_loop_close
from flyteconnect.server.app import BackgroundServer, ConnectorServer, serve_in_thread

from . import connectors
from .conftest import make_config
from .test_rpcs import get_request


class LoopClientConnector(AsyncConnectorBase[connectors.EchoMeta]):
    """Opens a per-loop "client" on its first call and registers its closer, as httpx/psycopg connectors do."""

    name = "Loop Client"
    task_type_name = "loop_client"
    metadata_type = connectors.EchoMeta

    def __init__(self) -> None:
        super().__init__()
        self.closed_on: list[asyncio.AbstractEventLoop] = []
        self.opened_on: asyncio.AbstractEventLoop | None = None

    async def _close(self) -> None:
        self.closed_on.append(asyncio.get_running_loop())

    async def create(self, task_template, output_prefix, inputs=None, **kwargs):
        return connectors.EchoMeta(job_id="l")

    async def get(self, resource_meta, **kwargs):
        if self.opened_on is None:
            self.opened_on = asyncio.get_running_loop()
            on_loop_close(self._close)
        return Resource(phase=Phase.RUNNING)

    async def delete(self, resource_meta, **kwargs):
        return None


def _list(address: str) -> list[str]:
    with grpc.insecure_channel(address) as channel:
        reply = agent_pb2_grpc.AgentMetadataServiceStub(channel).ListAgents(agent_pb2.ListAgentsRequest())
    return [a.name for a in reply.agents]


def test_stop_closes_the_loop_resources_connectors_registered() -> None:
    connector = LoopClientConnector()
    with serve_in_thread(ConnectorRegistry([connector]), make_config()) as handle:
        with grpc.insecure_channel(handle.address) as channel:
            reply = agent_pb2_grpc.AsyncAgentServiceStub(channel).GetTask(
                get_request("loop_client", connectors.EchoMeta(job_id="l").encode())
            )
        assert reply.resource.phase == Phase.RUNNING
        assert connector.closed_on == []
    assert connector.opened_on is handle.loop
    assert connector.closed_on == [handle.loop]


def test_serve_in_thread_as_a_context_manager_starts_once() -> None:
    handle = serve_in_thread(ConnectorRegistry([connectors.AdderConnector()]), make_config())
    with handle as entered:
        assert entered is handle
        with handle:  # entering again is a no-op too
            assert _list(handle.address) == ["Adder"]
    assert handle.loop.is_closed()
    with pytest.raises(RuntimeError, match="create a new one"):
        handle.start()


def test_a_background_server_stopped_before_starting_refuses_to_start() -> None:
    handle = BackgroundServer(ConnectorRegistry([connectors.AdderConnector()]), make_config())
    handle.stop()
    with pytest.raises(RuntimeError, match="create a new one"):
        handle.start()


async def test_metrics_http_server_is_shut_down_off_the_event_loop() -> None:
    config = dataclasses.replace(make_config(), grace=0)
    server = ConnectorServer(ConnectorRegistry([connectors.AdderConnector()]), config)
    await server.start()
    assert server.metrics_port
    httpd = server._httpd
    threads: list[int] = []
    real_shutdown = httpd.shutdown

    def spy() -> None:  # records which thread shuts the HTTP server down
        threads.append(threading.get_ident())
        real_shutdown()

    httpd.shutdown = spy
    await server.stop()
    assert threads and threads[0] != threading.get_ident()
    assert server._httpd is None
