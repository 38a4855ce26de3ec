"""Flyte 1 wire adapter: ``flyteidl.service.{AsyncAgentService, SyncAgentService, AgentMetadataService}``.

The servicers only translate: protos in → SDK views → ``Dispatcher`` → protos out, and ``CallFailed`` → status.
Requests arrive as raw bytes and are parsed by ``grpc_util.parse`` (malformed ones are INVALID_ARGUMENT); the servicer
methods also accept parsed request protos, so they can be called directly. CreateTask and ExecuteTaskSync parse
shallowly (``shallow``: template, inputs and metadata stay bytes until the connector reads them); GetTask remembers
the polls it has seen by their bytes. CreateTask, GetTask, DeleteTask and ExecuteTaskSync answer serialized replies
(``replies``: written as wire bytes, no message built).

Improvements over the reference server: GetTaskLogs really streams every page; GetTaskMetrics/GetTaskLogs/GetAgent
map errors (NOT_FOUND, UNIMPLEMENTED...) instead of answering UNKNOWN; ExecuteTaskSync checks the stream shape
(header, then inputs) and answers INVALID_ARGUMENT on misuse; GetTaskLogs/GetTaskMetrics pass the request's
parameters (``lines``, ``token``, ``queries``, ``start_time``, ``end_time``, ``step``) to connectors that accept them.
"""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator
from typing import Any

import grpc
from flyteidl.admin import agent_pb2
from flyteidl.service import agent_pb2_grpc

from flyteconnect.errors import InvalidRequest
from flyteconnect.memo import remember
from flyteconnect.models import LiteralMap, TaskExecutionMetadata, TaskTemplate
from flyteconnect.server import direct, replies
from flyteconnect.server.dispatch import Dispatcher
from flyteconnect.server.errors import CallFailed
from flyteconnect.server.grpc_util import (
    SERIALIZED,
    SnapshotReply,
    abort,
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


def _template(raw: bytes) -> TaskTemplate:
    """The request's template (its type and version route the call): malformed bytes are INVALID_ARGUMENT."""
    try:
        return TaskTemplate.from_bytes(raw)
    except InvalidRequest as e:
        raise CallFailed(_INVALID, str(e)) from None


def _key(request: Any) -> tuple[str, int]:
    """Routing key: task_category when it has a name, else the deprecated task_type at version 0 (as the reference)."""
    cat = request.task_category
    name = cat.name
    return (name, cat.version) if name else (request.task_type, 0)


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

    POLLS_REMEMBERED = 4096

    def __init__(self, dispatcher: Dispatcher | None = None) -> None:
        self._d = dispatcher or direct.attach(self)  # none: called directly, on the default registry (direct.py)
        # GetTask request bytes -> (routing key, resource_meta): Propeller polls a job with the same bytes every
        # time, so a poll seen before is not parsed again. Bounded; the oldest entry goes first.
        self._polls: dict[bytes, tuple[tuple[str, int], bytes]] = {}

    def _poll(self, request: Any) -> tuple[tuple[str, int], bytes]:
        """A GetTask request's routing key and resource_meta."""
        polls = self._polls
        if type(request) is bytes:
            seen = polls.get(request)
            if seen is not None:
                return seen
        req = parse(agent_pb2.GetTaskRequest, request)
        found = (_key(req), req.resource_meta)
        if type(request) is bytes:
            remember(polls, request, found, self.POLLS_REMEMBERED)
        return found

    async def CreateTask(self, request: Any, context: grpc.aio.ServicerContext) -> bytes:
        """Start a job; answer its resource_meta (a serialized CreateTaskResponse)."""
        try:
            if type(request) is not bytes:  # called directly with a request proto
                request = request.SerializeToString()
            req = parse(_CreateTaskRequest, request)
            template = _template(req.template)
            inputs = req.inputs
            meta = await self._d.create(
                (template.type, template.task_type_version),
                template,
                req.output_prefix,
                LiteralMap.from_bytes(inputs),
                TaskExecutionMetadata.from_bytes(req.task_execution_metadata),
                timeout=context.time_remaining(),
                input_bytes=len(inputs),
            )
        except CallFailed as e:
            return await abort(context, e)
        return replies.create_task(meta)

    async def GetTask(self, request: Any, context: grpc.aio.ServicerContext) -> bytes:
        """Poll a job (the hot path); answers a serialized GetTaskResponse."""
        try:
            key, resource_meta = self._poll(request)
            reply: bytes = await self._d.get(
                key, resource_meta, convert=replies.get_task_v1, timeout=context.time_remaining()
            )
        except CallFailed as e:
            return await abort(context, e)
        return reply

    async def DeleteTask(self, request: Any, context: grpc.aio.ServicerContext) -> bytes:
        """Cancel a job (answers a serialized, empty DeleteTaskResponse)."""
        try:
            req = parse(agent_pb2.DeleteTaskRequest, request)
            await self._d.delete(_key(req), req.resource_meta, timeout=context.time_remaining())
        except CallFailed as e:
            return await abort(context, e)
        return _DELETED

    async def GetTaskMetrics(self, request: Any, context: grpc.aio.ServicerContext) -> agent_pb2.GetTaskMetricsResponse:
        """The connector's metrics for a job (UNIMPLEMENTED when it has no get_metrics)."""
        try:
            req = parse(agent_pb2.GetTaskMetricsRequest, request)
            return await self._d.get_metrics(
                _key(req),
                req.resource_meta,
                convert=_metrics_pb,
                timeout=context.time_remaining(),
                queries=list(req.queries),
                start_time=req.start_time,
                end_time=req.end_time,
                step=req.step,
            )
        except CallFailed as e:
            return await abort(context, e)

    async def GetTaskLogs(self, request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
        """Stream the connector's log pages (UNIMPLEMENTED when it has no get_logs)."""
        try:
            req = parse(agent_pb2.GetTaskLogsRequest, request)
            pages = self._d.get_logs(
                _key(req),
                req.resource_meta,
                convert=_logs_pb,
                timeout=context.time_remaining(),
                lines=req.lines,
                token=req.token,
            )
            async for page in pages:
                yield page
        except CallFailed as e:
            await abort(context, e)


class SyncConnectorService(agent_pb2_grpc.SyncAgentServiceServicer):  # type: ignore[misc]
    """``flyteidl.service.SyncAgentService``: ExecuteTaskSync (header, inputs, half-close → one header reply)."""

    def __init__(self, dispatcher: Dispatcher | None = None) -> None:
        self._d = dispatcher or direct.attach(self)  # none: called directly, on the default registry (direct.py)

    async def ExecuteTaskSync(self, request_iterator: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
        """Run a sync connector's ``do``; reply with exactly one header message carrying the Resource (serialized)."""
        try:
            raw_header, inputs = await self._read_request(request_iterator, context)
            header = parse(_CreateRequestHeader, raw_header)
            template = _template(header.template)
            reply = await self._d.do(
                (template.type, template.task_type_version),
                template,
                header.output_prefix,
                LiteralMap.from_bytes(inputs),
                convert=replies.execute_task_sync,
                timeout=context.time_remaining(),
                input_bytes=len(inputs),
                task_execution_metadata=TaskExecutionMetadata.from_bytes(header.task_execution_metadata),
            )
        except CallFailed as e:
            await abort(context, e)
            return
        yield reply

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


class ConnectorMetadataService(agent_pb2_grpc.AgentMetadataServiceServicer):  # type: ignore[misc]
    """``flyteidl.service.AgentMetadataService``: ListAgents and GetAgent."""

    def __init__(self, dispatcher: Dispatcher | None = None) -> None:
        self._d = dispatcher or direct.attach(self)  # none: called directly, on the default registry (direct.py)
        self._listed = SnapshotReply(
            lambda infos: agent_pb2.ListAgentsResponse(agents=[info.to_flyte_idl() for info in infos])
        )

    async def GetAgent(self, request: Any, context: grpc.aio.ServicerContext) -> agent_pb2.GetAgentResponse:
        """One connector's metadata; unknown name → NOT_FOUND."""
        try:
            req = parse(agent_pb2.GetAgentRequest, request)
            info = self._d.get_connector(req.name)
        except CallFailed as e:
            return await abort(context, e)
        return agent_pb2.GetAgentResponse(agent=info.to_flyte_idl())

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
