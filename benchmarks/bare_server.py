"""The ceiling: a bare grpc.aio servicer of the Flyte 1 (and Flyte 2 GetTask) services answering constant replies.

It does what any Python gRPC server must do (grpc.aio, the generated flyteidl servicers, protobuf parse and
serialize) and nothing else, so a framework's req/s divided by this one's, measured in the same run, is the
framework's efficiency. The slow task types behave like the benchmark connectors: ``bench_sleep`` awaits 50 ms,
``bench_blocking`` sleeps 50 ms on a thread pool of ``--pool-size`` threads.

Run: ``python -m benchmarks.bare_server --port 8000``.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc
from flyteidl.admin import agent_pb2
from flyteidl.service import agent_pb2_grpc
from flyteidl2.connector import connector_pb2 as v2_connector_pb2
from flyteidl2.connector import service_pb2_grpc as v2_service_pb2_grpc

from benchmarks import payloads

_LIST = payloads.list_agents_response()
_AGENTS = {a.name: agent_pb2.GetAgentResponse(agent=a) for a in _LIST.agents}
_CREATED = agent_pb2.CreateTaskResponse(resource_meta=payloads.META_RUNNING)
_RUNNING = agent_pb2.GetTaskResponse(resource=payloads.resource(done=False))
_GET_BY_META = {
    payloads.META_DONE: agent_pb2.GetTaskResponse(resource=payloads.resource(done=True)),
    payloads.META_RUNNING: _RUNNING,
}
_DELETED = agent_pb2.DeleteTaskResponse()
_SYNC_REPLY = agent_pb2.ExecuteTaskSyncResponse(
    header=agent_pb2.ExecuteTaskSyncResponseHeader(resource=payloads.resource(done=True))
)
_V2_RUNNING = v2_connector_pb2.GetTaskResponse(resource=payloads.v2_resource(done=False))
_V2_GET_BY_META = {
    payloads.META_DONE: v2_connector_pb2.GetTaskResponse(resource=payloads.v2_resource(done=True)),
    payloads.META_RUNNING: _V2_RUNNING,
}


class AsyncService(agent_pb2_grpc.AsyncAgentServiceServicer):  # type: ignore[misc]
    """CreateTask, GetTask, DeleteTask with constant replies."""

    def __init__(self, pool: ThreadPoolExecutor) -> None:
        self._pool = pool

    async def CreateTask(self, request: Any, context: Any) -> Any:
        return _CREATED

    async def GetTask(self, request: Any, context: Any) -> Any:
        kind = request.task_category.name
        if kind == payloads.SLEEP_TYPE:
            await asyncio.sleep(payloads.SLEEP_SECONDS)
            return _RUNNING
        if kind == payloads.BLOCKING_TYPE:
            await asyncio.get_running_loop().run_in_executor(self._pool, time.sleep, payloads.SLEEP_SECONDS)
            return _RUNNING
        return _GET_BY_META.get(request.resource_meta, _RUNNING)

    async def DeleteTask(self, request: Any, context: Any) -> Any:
        return _DELETED


class SyncService(agent_pb2_grpc.SyncAgentServiceServicer):  # type: ignore[misc]
    """ExecuteTaskSync: read the header and the inputs, answer one header message."""

    async def ExecuteTaskSync(self, request_iterator: Any, context: Any) -> AsyncIterator[Any]:
        async for _ in request_iterator:
            pass
        yield _SYNC_REPLY


class MetadataService(agent_pb2_grpc.AgentMetadataServiceServicer):  # type: ignore[misc]
    """ListAgents and GetAgent from a precomputed list."""

    async def ListAgents(self, request: Any, context: Any) -> Any:
        return _LIST

    async def GetAgent(self, request: Any, context: Any) -> Any:
        reply = _AGENTS.get(request.name)
        if reply is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"no agent {request.name!r}")
        return reply


class V2AsyncService(v2_service_pb2_grpc.AsyncConnectorServiceServicer):  # type: ignore[misc]
    """Flyte 2 ``flyteidl2.connector.AsyncConnectorService``: GetTask with constant replies (what is measured)."""

    async def GetTask(self, request: Any, context: Any) -> Any:
        return _V2_GET_BY_META.get(request.resource_meta, _V2_RUNNING)


# Each entry adds one service to the server; a new protocol (e.g. Flyte 2) adds its servicer here.
SERVICES: list[Callable[[grpc.aio.Server, ThreadPoolExecutor], None]] = [
    lambda server, pool: agent_pb2_grpc.add_AsyncAgentServiceServicer_to_server(AsyncService(pool), server),
    lambda server, pool: agent_pb2_grpc.add_SyncAgentServiceServicer_to_server(SyncService(), server),
    lambda server, pool: agent_pb2_grpc.add_AgentMetadataServiceServicer_to_server(MetadataService(), server),
    lambda server, pool: v2_service_pb2_grpc.add_AsyncConnectorServiceServicer_to_server(V2AsyncService(), server),
]


async def serve(port: int, pool_size: int) -> None:
    """Serve on 127.0.0.1:``port`` until cancelled."""
    pool = ThreadPoolExecutor(max_workers=pool_size, thread_name_prefix="bare")
    server = grpc.aio.server()
    for add in SERVICES:
        add(server, pool)
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    try:
        await server.wait_for_termination()
    finally:
        await server.stop(0)
        pool.shutdown(wait=False)


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--pool-size", type=int, default=16, help="threads for the blocking task type")
    args = parser.parse_args(argv)
    try:
        asyncio.run(serve(args.port, args.pool_size))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
