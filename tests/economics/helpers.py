"""A real server per test on loopback, and Propeller's Flyte 1 calls through flyteidl's stubs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import grpc
from flyteidl.admin import agent_pb2
from flyteidl.core import identifier_pb2, tasks_pb2
from flyteidl.service import agent_pb2_grpc

from flyteconnect import ConnectorBase, ConnectorRegistry
from flyteconnect.server.app import BackgroundServer, ServerConfig, serve_in_thread
from flyteconnect.server.dispatch import DispatchConfig


def execution_id(name: str, attempt: int = 0) -> identifier_pb2.TaskExecutionIdentifier:
    """A task execution identifier: one attempt of one node of one workflow execution."""
    return identifier_pb2.TaskExecutionIdentifier(
        task_id=identifier_pb2.Identifier(resource_type=identifier_pb2.TASK, name="t"),
        node_execution_id=identifier_pb2.NodeExecutionIdentifier(
            node_id="n0", execution_id=identifier_pb2.WorkflowExecutionIdentifier(project="p", domain="d", name=name)
        ),
        retry_attempt=attempt,
    )


def create_request(task_type: str, execution: str | None = "e1", attempt: int = 0) -> agent_pb2.CreateTaskRequest:
    """CreateTask as Propeller sends it (no task execution id when ``execution`` is None)."""
    metadata = agent_pb2.TaskExecutionMetadata(namespace="ns")
    if execution is not None:
        metadata.task_execution_id.CopyFrom(execution_id(execution, attempt))
    return agent_pb2.CreateTaskRequest(
        template=tasks_pb2.TaskTemplate(type=task_type),
        output_prefix="s3://bucket/out",
        task_execution_metadata=metadata,
    )


class Client:
    """grpc.aio Flyte 1 stub for one server."""

    def __init__(self, address: str, task_type: str) -> None:
        self.channel = grpc.aio.insecure_channel(address)
        self.stub = agent_pb2_grpc.AsyncAgentServiceStub(self.channel)
        self.task_type = task_type

    async def create(self, execution: str | None = "e1", attempt: int = 0) -> bytes:
        """CreateTask; the resource_meta."""
        reply = await self.stub.CreateTask(create_request(self.task_type, execution, attempt), timeout=10)
        return bytes(reply.resource_meta)

    async def get(self, meta: bytes) -> Any:
        """GetTask; the Resource proto."""
        category = agent_pb2.TaskCategory(name=self.task_type, version=0)
        request = agent_pb2.GetTaskRequest(task_category=category, resource_meta=meta)
        return (await self.stub.GetTask(request, timeout=10)).resource

    async def delete(self, meta: bytes) -> None:
        """DeleteTask."""
        category = agent_pb2.TaskCategory(name=self.task_type, version=0)
        await self.stub.DeleteTask(agent_pb2.DeleteTaskRequest(task_category=category, resource_meta=meta), timeout=10)


@asynccontextmanager
async def serving(
    *connectors: ConnectorBase, task_type: str = "counted", **server: Any
) -> AsyncIterator[tuple[BackgroundServer, Client]]:
    """A server for ``connectors`` on its own loop thread and a client for ``task_type``."""
    dispatch = server.pop("dispatch", {})
    config = ServerConfig(
        host="127.0.0.1",
        port=0,
        metrics_port=None,
        protocols=server.pop("protocols", ["v1"]),
        dispatch=DispatchConfig(stall_threshold=None, **dispatch),
        **server,
    )
    handle = serve_in_thread(ConnectorRegistry(list(connectors)), config)
    client = Client(handle.address, task_type)
    try:
        yield handle, client
    finally:
        await client.channel.close()
        handle.stop()


def counter(handle: BackgroundServer, name: str, **labels: str) -> float:
    """A metric's current value (``flyte_connector_calls_saved_total`` ...)."""
    return handle.server.metrics.value(name, labels)
