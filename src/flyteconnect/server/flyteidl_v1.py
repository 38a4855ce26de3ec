"""Flyte 1 wire adapter: ``flyteidl.service.{AsyncAgentService, SyncAgentService, AgentMetadataService}``.

The servicers only translate: request bytes → SDK views → ``Dispatcher`` → reply bytes. Each RPC is a plain
``_start`` function (read the request, return the dispatcher's awaitable) made a servicer method by the shared error
boundary (``adapter.rpc``: a ``CallFailed`` becomes the call's status). Requests arrive as raw bytes; the servicer
methods also accept parsed request protos, so they can be called directly. CreateTask and ExecuteTaskSync parse
shallowly (``shallow``: template, inputs and metadata stay bytes until the connector reads them); GetTask and
DeleteTask are read through the shared ``PollReader`` (remembered by their bytes). CreateTask, GetTask, DeleteTask and
ExecuteTaskSync answer serialized replies (``replies``: written as wire bytes, no message built).

Improvements over the reference server: GetTaskLogs really streams every page; GetTaskMetrics/GetTaskLogs/GetAgent
map errors (NOT_FOUND, UNIMPLEMENTED...) instead of answering UNKNOWN; ExecuteTaskSync checks the stream shape
(header, then inputs) and answers INVALID_ARGUMENT on misuse; GetTaskLogs/GetTaskMetrics pass the request's
parameters (``lines``, ``token``, ``queries``, ``start_time``, ``end_time``, ``step``) to connectors that accept them.
"""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator, Awaitable
from typing import Any

import grpc
from flyteidl.admin import agent_pb2
from flyteidl.service import agent_pb2_grpc

from flyteconnect.models import LiteralMap, TaskExecutionMetadata
from flyteconnect.server import direct, replies
from flyteconnect.server.adapter import PollReader, Routed, client_stream_rpc, rpc, stream_rpc, template_of
from flyteconnect.server.dispatch import Dispatcher
from flyteconnect.server.errors import CallFailed
from flyteconnect.server.grpc_util import (
    SERIALIZED,
    SnapshotReply,
    add_services,
    bidi_stream,
    parse,
    server_stream,
    unary,
)
from flyteconnect.server.shallow import shallow

__all__ = [
    "ADAPTER",
    "AsyncConnectorService",
    "ConnectorMetadataService",
    "FlyteIdlV1",
    "SyncConnectorService",
]

ASYNC_SERVICE = "flyteidl.service.AsyncAgentService"
SYNC_SERVICE = "flyteidl.service.SyncAgentService"
METADATA_SERVICE = "flyteidl.service.AgentMetadataService"

_INVALID = grpc.StatusCode.INVALID_ARGUMENT
_DELETED = b""  # a serialized (empty) DeleteTaskResponse
# Twins whose nested messages stay bytes (server/shallow.py): the views parse them on first use.
_CreateTaskRequest = shallow(agent_pb2.CreateTaskRequest)
_ExecuteTaskSyncRequest = shallow(agent_pb2.ExecuteTaskSyncRequest)
_CreateRequestHeader = shallow(agent_pb2.CreateRequestHeader)


def _key(request: Any) -> tuple[str, int]:
    """Routing key: task_category when it has a name, else the deprecated task_type at version 0 (as the reference)."""
    cat = request.task_category
    name = cat.name
    return (name, cat.version) if name else (request.task_type, 0)


def _routed(cls: Any) -> Any:
    def read(request: Any) -> Routed:
        req = parse(cls, request)
        return _key(req), req.resource_meta, None

    return read


def _metrics_pb(value: Any) -> agent_pb2.GetTaskMetricsResponse:
    if isinstance(value, agent_pb2.GetTaskMetricsResponse):
        return value
    raise TypeError(f"expected a flyteidl.admin.GetTaskMetricsResponse, got {type(value).__name__}")


def _logs_pb(value: Any) -> agent_pb2.GetTaskLogsResponse:
    if isinstance(value, agent_pb2.GetTaskLogsResponse):
        return value
    if isinstance(value, agent_pb2.GetTaskLogsResponseBody):
        return agent_pb2.GetTaskLogsResponse(body=value)
    if isinstance(value, agent_pb2.GetTaskLogsResponseHeader):
        return agent_pb2.GetTaskLogsResponse(header=value)
    raise TypeError(f"expected a flyteidl.admin.GetTaskLogsResponse, got {type(value).__name__}")


class AsyncConnectorService(agent_pb2_grpc.AsyncAgentServiceServicer):  # type: ignore[misc]
    """``flyteidl.service.AsyncAgentService``: CreateTask, GetTask, DeleteTask, GetTaskMetrics, GetTaskLogs."""

    POLLS_REMEMBERED = PollReader.LIMIT

    def __init__(self, dispatcher: Dispatcher | None = None) -> None:
        self._d = dispatcher or direct.attach(self)  # none: called directly, on the default registry (direct.py)
        self._gets = PollReader(_routed(agent_pb2.GetTaskRequest))
        self._polls = self._gets.memo  # GetTask request bytes -> (routing key, resource_meta, None)
        self._deletes = PollReader(_routed(agent_pb2.DeleteTaskRequest))

    def _CreateTask(self, request: Any, context: grpc.aio.ServicerContext) -> Awaitable[bytes]:
        if type(request) is not bytes:  # called directly with a request proto
            request = request.SerializeToString()
        req = parse(_CreateTaskRequest, request)
        template, key = template_of(req.template)
        inputs = req.inputs
        return self._d.create(
            key,
            template,
            req.output_prefix,
            LiteralMap.from_bytes(inputs),
            TaskExecutionMetadata.from_bytes(req.task_execution_metadata),
            convert=replies.create_task,
            timeout=context.time_remaining(),
            input_bytes=len(inputs),
        )

    def _GetTask(self, request: Any, context: grpc.aio.ServicerContext) -> Awaitable[bytes]:
        found = self._polls.get(request) if type(request) is bytes else None  # PollReader.read's hit, without a call
        if found is None:
            found = self._gets.read(request, self.POLLS_REMEMBERED)
        return self._d.get(found[0], found[1], convert=replies.get_task_v1, timeout=context.time_remaining())

    def _DeleteTask(self, request: Any, context: grpc.aio.ServicerContext) -> Awaitable[bytes]:
        key, resource_meta, _ = self._deletes.read(request, self.POLLS_REMEMBERED)
        return self._d.delete(key, resource_meta, convert=_deleted, timeout=context.time_remaining())

    def _GetTaskMetrics(self, request: Any, context: grpc.aio.ServicerContext) -> Awaitable[Any]:
        req = parse(agent_pb2.GetTaskMetricsRequest, request)
        return self._d.get_metrics(
            _key(req),
            req.resource_meta,
            convert=_metrics_pb,
            timeout=context.time_remaining(),
            queries=list(req.queries),
            start_time=req.start_time,
            end_time=req.end_time,
            step=req.step,
        )

    def _GetTaskLogs(self, request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
        req = parse(agent_pb2.GetTaskLogsRequest, request)
        return self._d.get_logs(
            _key(req),
            req.resource_meta,
            convert=_logs_pb,
            timeout=context.time_remaining(),
            lines=req.lines,
            token=req.token,
        )

    CreateTask = rpc(_CreateTask)
    """Start a job; answer its resource_meta (a serialized CreateTaskResponse)."""
    GetTask = rpc(_GetTask)
    """Poll a job (the hot path); answers a serialized GetTaskResponse."""
    DeleteTask = rpc(_DeleteTask)
    """Cancel a job (answers a serialized, empty DeleteTaskResponse)."""
    GetTaskMetrics = rpc(_GetTaskMetrics)
    """The connector's metrics for a job (UNIMPLEMENTED when it has no get_metrics)."""
    GetTaskLogs = stream_rpc(_GetTaskLogs)
    """Stream the connector's log pages (UNIMPLEMENTED when it has no get_logs)."""


def _deleted(_: None) -> bytes:
    return _DELETED


class SyncConnectorService(agent_pb2_grpc.SyncAgentServiceServicer):  # type: ignore[misc]
    """``flyteidl.service.SyncAgentService``: ExecuteTaskSync (header, inputs, half-close → one header reply)."""

    def __init__(self, dispatcher: Dispatcher | None = None) -> None:
        self._d = dispatcher or direct.attach(self)  # none: called directly, on the default registry (direct.py)

    async def _read_request(self, request_iterator: Any, context: grpc.aio.ServicerContext) -> tuple[bytes, bytes]:
        """Read the header and the inputs, as bytes; misuse is INVALID_ARGUMENT (never a hang: reads are bounded)."""
        remaining = context.time_remaining()
        limit = self._d.config.timeout
        # A client deadline no later than the server's bound ends the call by itself (grpc cancels it then; Propeller
        # always sends one): no timer of ours. Without one, the server's bound stops a silent client holding the call.
        bound = None if remaining is not None and (limit is None or remaining <= limit) else limit
        it = request_iterator.__aiter__()
        parts: list[Any] = []
        try:
            with self._d.bounded(bound):
                for _ in range(2):
                    try:
                        raw = await it.__anext__()
                    except StopAsyncIteration:
                        break
                    if type(raw) is not bytes:  # called directly with request protos
                        raw = raw.SerializeToString()
                    parts.append(parse(_ExecuteTaskSyncRequest, raw))
            # Close grpc's message generator now: left suspended, it is closed later by asyncio's finalizer hook,
            # which wakes the loop through its self-pipe (a syscall and a task per call).
            aclose = getattr(it, "aclose", None)
            if aclose is not None:
                await aclose()
        except TimeoutError:
            raise CallFailed(
                grpc.StatusCode.DEADLINE_EXCEEDED,
                f"ExecuteTaskSync: the client sent {len(parts)} of 2 messages (header, inputs) "
                f"within {bound or 0:.1f}s",
            ) from None
        if not parts:
            raise CallFailed(_INVALID, "ExecuteTaskSync: the stream ended without a message; send header, then inputs")
        first = parts[0]
        kind = first.WhichOneof("part")
        if kind != "header":
            got = "inputs" if kind == "inputs" else "an empty message"
            raise CallFailed(_INVALID, f"ExecuteTaskSync: the first message must be the header, got {got}")
        if len(parts) < 2:
            raise CallFailed(
                _INVALID,
                "ExecuteTaskSync: the stream ended after the header; send the inputs message (may be empty) next",
            )
        second = parts[1]
        if second.WhichOneof("part") != "inputs":
            raise CallFailed(_INVALID, "ExecuteTaskSync: the second message must be the inputs, got another header")
        header: bytes = first.header
        inputs: bytes = second.inputs
        return header, inputs

    def _ExecuteTaskSync(self, parts: tuple[bytes, bytes], context: grpc.aio.ServicerContext) -> Awaitable[bytes]:
        raw_header, inputs = parts
        header = parse(_CreateRequestHeader, raw_header)
        template, key = template_of(header.template)
        return self._d.do(
            key,
            template,
            header.output_prefix,
            LiteralMap.from_bytes(inputs),
            convert=replies.execute_task_sync,
            timeout=context.time_remaining(),
            input_bytes=len(inputs),
            task_execution_metadata=TaskExecutionMetadata.from_bytes(header.task_execution_metadata),
        )

    ExecuteTaskSync = client_stream_rpc(_read_request, _ExecuteTaskSync)
    """Run a sync connector's ``do``; reply with exactly one header message carrying the Resource (serialized)."""


class ConnectorMetadataService(agent_pb2_grpc.AgentMetadataServiceServicer):  # type: ignore[misc]
    """``flyteidl.service.AgentMetadataService``: ListAgents and GetAgent."""

    def __init__(self, dispatcher: Dispatcher | None = None) -> None:
        self._d = dispatcher or direct.attach(self)  # none: called directly, on the default registry (direct.py)
        self._listed = SnapshotReply(
            lambda infos: agent_pb2.ListAgentsResponse(agents=[info.to_flyte_idl() for info in infos])
        )

    async def _GetAgent(self, request: Any, context: grpc.aio.ServicerContext) -> agent_pb2.GetAgentResponse:
        req = parse(agent_pb2.GetAgentRequest, request)
        return agent_pb2.GetAgentResponse(agent=self._d.get_connector(req.name).to_flyte_idl())

    GetAgent = rpc(_GetAgent)
    """One connector's metadata; unknown name → NOT_FOUND."""

    async def ListAgents(self, request: Any, context: grpc.aio.ServicerContext) -> agent_pb2.ListAgentsResponse:
        """Every served connector, with its task types, categories and is_sync (what Propeller routes by)."""
        return self._listed.get(self._d.list_connectors())


class FlyteIdlV1:
    """The protocol adapter registering the three Flyte 1 services on a grpc.aio server."""

    name = "v1"
    service_names = (ASYNC_SERVICE, SYNC_SERVICE, METADATA_SERVICE)

    def add_to_server(self, server: grpc.aio.Server, dispatcher: Dispatcher) -> None:
        """Register the services, with raw-bytes request handlers (see the module docstring)."""
        # The service descriptors (not only the messages) must be in the default pool for server reflection.
        importlib.import_module("flyteidl.service.agent_pb2")
        a = AsyncConnectorService(dispatcher)
        s = SyncConnectorService(dispatcher)
        m = ConnectorMetadataService(dispatcher)
        add_services(
            server,
            {
                ASYNC_SERVICE: [
                    unary(a.CreateTask, SERIALIZED),
                    unary(a.GetTask, SERIALIZED),
                    unary(a.DeleteTask, SERIALIZED),
                    unary(a.GetTaskMetrics, agent_pb2.GetTaskMetricsResponse),
                    server_stream(a.GetTaskLogs, agent_pb2.GetTaskLogsResponse),
                ],
                SYNC_SERVICE: [bidi_stream(s.ExecuteTaskSync, SERIALIZED)],
                METADATA_SERVICE: [
                    unary(m.GetAgent, agent_pb2.GetAgentResponse),
                    unary(m.ListAgents, agent_pb2.ListAgentsResponse),
                ],
            },
        )


ADAPTER = FlyteIdlV1()
"""What ``app.py`` loads for ``--protocol v1``."""
