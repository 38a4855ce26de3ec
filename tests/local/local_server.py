"""A minimal Flyte 1 agent server for the ``--server`` tests: real grpc.aio on loopback, flyteidl's servicers,
connectors called through the in-process backend. It stands in until flyteconnect's own server is on main."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from typing import Any

import grpc
from flyteidl.admin import agent_pb2
from flyteidl.service import agent_pb2_grpc

from flyteconnect import ConnectorNotFound, ConnectorRegistry
from flyteconnect.local.backend import InProcessBackend, Job


def _job(template: Any, inputs: Any, output_prefix: str, metadata: Any) -> Job:
    return Job("remote", template, inputs, output_prefix, metadata, "remote")


def _stub_job(category: Any) -> Job:
    from flyteidl.core import tasks_pb2

    template = tasks_pb2.TaskTemplate(type=category.name, task_type_version=category.version)
    return _job(template, None, "", None)


class _Services(
    agent_pb2_grpc.AsyncAgentServiceServicer,
    agent_pb2_grpc.SyncAgentServiceServicer,
    agent_pb2_grpc.AgentMetadataServiceServicer,
):
    def __init__(self, registry: ConnectorRegistry) -> None:
        self.registry = registry
        self.backend = InProcessBackend(registry)
        self.deletes = 0

    async def _guard(self, context: grpc.aio.ServicerContext, coro: Any) -> Any:
        try:
            return await coro
        except ConnectorNotFound as e:
            await context.abort(grpc.StatusCode.NOT_FOUND, str(e))
        except Exception as e:
            await context.abort(grpc.StatusCode.INTERNAL, f"{type(e).__name__}: {e}")

    async def ListAgents(self, request: Any, context: Any) -> Any:
        return agent_pb2.ListAgentsResponse(agents=self.registry.list_connectors())

    async def CreateTask(self, request: Any, context: Any) -> Any:
        job = _job(request.template, request.inputs, request.output_prefix, request.task_execution_metadata)
        meta = await self._guard(context, self.backend.create(job))
        return agent_pb2.CreateTaskResponse(resource_meta=meta)

    async def GetTask(self, request: Any, context: Any) -> Any:
        resource = await self._guard(context, self.backend.get(_stub_job(request.task_category), request.resource_meta))
        return agent_pb2.GetTaskResponse(resource=resource.to_flyte_idl())

    async def DeleteTask(self, request: Any, context: Any) -> Any:
        self.deletes += 1
        await self._guard(context, self.backend.delete(_stub_job(request.task_category), request.resource_meta))
        return agent_pb2.DeleteTaskResponse()

    async def ExecuteTaskSync(self, request_iterator: AsyncIterator[Any], context: Any) -> AsyncIterator[Any]:
        header = await request_iterator.__anext__()
        inputs = await request_iterator.__anext__()
        h = header.header
        job = _job(h.template, inputs.inputs, h.output_prefix, h.task_execution_metadata)
        resource = await self._guard(context, self.backend.do(job))
        yield agent_pb2.ExecuteTaskSyncResponse(
            header=agent_pb2.ExecuteTaskSyncResponseHeader(resource=resource.to_flyte_idl())
        )


class LocalServer:
    """Serves ``registry`` on 127.0.0.1 from a background thread with its own loop."""

    def __init__(self, registry: ConnectorRegistry) -> None:
        self.services = _Services(registry)
        self.loop = asyncio.new_event_loop()
        self.port = 0
        self._server: grpc.aio.Server | None = None
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    async def _start(self) -> None:
        self._server = grpc.aio.server()
        agent_pb2_grpc.add_AsyncAgentServiceServicer_to_server(self.services, self._server)
        agent_pb2_grpc.add_SyncAgentServiceServicer_to_server(self.services, self._server)
        agent_pb2_grpc.add_AgentMetadataServiceServicer_to_server(self.services, self._server)
        self.port = self._server.add_insecure_port("127.0.0.1:0")
        await self._server.start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def __enter__(self) -> LocalServer:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(10)
        return self

    def __exit__(self, *exc: Any) -> None:
        assert self._server is not None
        asyncio.run_coroutine_threadsafe(self._server.stop(0), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()
