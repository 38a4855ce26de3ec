"""Flyte 2 wire adapter: ``flyteidl2.connector.{AsyncConnectorService, ConnectorMetadataService}``.

The same shape as the Flyte 1 adapter (``flyteidl_v1``): the shared error boundary and request reading
(``adapter``: CreateTask parsed shallowly, GetTask/DeleteTask remembered by their bytes), the same dispatcher, errors,
metrics and reply writer. Flyte 2 differences handled here:

- ``connection.secrets``/``configs`` of a request become keyword arguments of the connector method (when its
  signature accepts them, as flyte-sdk passes them) and the request's secrets are visible to
  ``flyteconnect.get_secret`` while the call runs (``request_secrets``; contextvars carry them into worker threads).
- There is no sync service: a sync connector's ``do`` runs inside CreateTask and its Resource travels back in
  ``resource_meta`` (the sync envelope of ``v2_convert``), so any replica answers GetTask from the bytes alone;
  DeleteTask on it is a no-op. When the envelope would exceed ``MAX_ENVELOPE_BYTES`` the outputs are written to
  ``<output_prefix>/outputs.pb`` (a serialised ``flyteidl2.task.Outputs``, through fsspec) and left out of the
  envelope, so the executor reads them from there; when that is impossible the task answers FAILED with the reason.
- GetTaskLogs streams every page the connector produces; GetTaskMetrics/GetTaskLogs accept Flyte 1 or Flyte 2
  response protos from the connector (they are wire-compatible) and send Flyte 2 ones.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable
from typing import Any

import grpc
from flyteidl2.connector import connector_pb2
from google.protobuf import message_factory
from google.protobuf.message import Message

from flyteconnect.connector import Phase
from flyteconnect.errors import InvalidRequest
from flyteconnect.models import LiteralMap, TaskExecutionMetadata
from flyteconnect.secrets import request_secrets
from flyteconnect.server import replies
from flyteconnect.server import v2_convert as cv
from flyteconnect.server.adapter import PollReader, Routed, rpc, stream_rpc, template_of
from flyteconnect.server.dispatch import Dispatcher, Entry
from flyteconnect.server.errors import CallFailed, to_status
from flyteconnect.server.grpc_util import (
    SERIALIZED,
    SnapshotReply,
    add_services,
    parse,
    server_stream,
    unary,
)
from flyteconnect.server.shallow import shallow

__all__ = ["ADAPTER", "AsyncConnectorService", "ConnectorMetadataService", "FlyteIdlV2"]

log = logging.getLogger("flyteconnect.server")

ASYNC_SERVICE = "flyteidl2.connector.AsyncConnectorService"
METADATA_SERVICE = "flyteidl2.connector.ConnectorMetadataService"
_DELETED = b""  # a serialized (empty) DeleteTaskResponse
# The twin whose nested messages stay bytes (server/shallow.py): template, inputs and metadata are wire-compatible with
# their Flyte 1 counterparts (v2_convert's docstring), so the same views read them, parsed on first use.
_CreateTaskRequest = shallow(connector_pb2.CreateTaskRequest)
_CONNECTION = message_factory.GetMessageClass(
    connector_pb2.CreateTaskRequest.DESCRIPTOR.fields_by_name["connection"].message_type
)


def _reparse(value: Any, cls: type[Message], accepted: tuple[str, ...]) -> Any:
    """``value`` as ``cls``: itself, or a wire-compatible Flyte 1 message of one of the ``accepted`` names."""
    if isinstance(value, cls):
        return value
    if isinstance(value, Message) and value.DESCRIPTOR.full_name in accepted:
        return cls.FromString(value.SerializeToString())
    raise TypeError(f"expected a {cls.DESCRIPTOR.full_name}, got {type(value).__name__}")


def _metrics_pb(value: Any) -> connector_pb2.GetTaskMetricsResponse:
    return _reparse(value, connector_pb2.GetTaskMetricsResponse, ("flyteidl.admin.GetTaskMetricsResponse",))


def _logs_pb(value: Any) -> connector_pb2.GetTaskLogsResponse:
    name = value.DESCRIPTOR.full_name if isinstance(value, Message) else ""
    if name.endswith("GetTaskLogsResponseBody"):
        return connector_pb2.GetTaskLogsResponse(body=_reparse(value, connector_pb2.GetTaskLogsResponseBody, (name,)))
    if name.endswith("GetTaskLogsResponseHeader"):
        header = _reparse(value, connector_pb2.GetTaskLogsResponseHeader, (name,))
        return connector_pb2.GetTaskLogsResponse(header=header)
    return _reparse(value, connector_pb2.GetTaskLogsResponse, ("flyteidl.admin.GetTaskLogsResponse",))


def _connection(connection: Any) -> tuple[dict[str, str], dict[str, str]]:
    """(keyword arguments, secrets) of a request's connection; both empty when it has none (the common case).

    A secret key that is not a plain name is the caller's error: CallFailed(INVALID_ARGUMENT) naming the key.
    """
    if connection is None:
        return {}, {}
    try:
        secrets = cv.connection_secrets(connection)
    except InvalidRequest as e:
        code, details = to_status(e, operation="connection")
        log.warning("%s -> %s", details, code.name)
        raise CallFailed(code, details) from None
    return cv.connection_kwargs(connection), secrets


def _routed(cls: Any) -> Any:
    def read(request: Any) -> Routed:
        req = parse(cls, request)
        cat = req.task_category
        return (cat.name, cat.version), req.resource_meta, req.connection if req.HasField("connection") else None

    return read


async def _with_secrets(secrets: dict[str, str], call: Awaitable[Any]) -> Any:
    """Await ``call`` with the request's secrets visible to ``flyteconnect.get_secret``."""
    with request_secrets(secrets):
        return await call


class AsyncConnectorService:
    """``flyteidl2.connector.AsyncConnectorService``: CreateTask, GetTask, DeleteTask, GetTaskMetrics, GetTaskLogs."""

    POLLS_REMEMBERED = PollReader.LIMIT

    def __init__(self, dispatcher: Dispatcher) -> None:
        self._d = dispatcher
        self._gets = PollReader(_routed(connector_pb2.GetTaskRequest))
        self._polls = self._gets.memo
        self._deletes = PollReader(_routed(connector_pb2.DeleteTaskRequest))

    def _CreateTask(self, request: Any, context: grpc.aio.ServicerContext) -> Awaitable[bytes]:
        if type(request) is not bytes:  # called directly with a request proto
            request = request.SerializeToString()
        req = parse(_CreateTaskRequest, request)
        template, key = template_of(req.template)
        entry = self._d.lookup(key)
        kwargs, secrets = _connection(_CONNECTION.FromString(req.connection) if req.connection else None)
        inputs = req.inputs
        metadata = TaskExecutionMetadata.from_bytes(req.task_execution_metadata)
        args = (template, req.output_prefix, LiteralMap.from_bytes(inputs))
        call: Awaitable[bytes]
        if entry.connector.is_sync:
            call = self._run_sync(entry, key, args, metadata, len(inputs), context, kwargs)
        else:
            call = self._d.create(
                key,
                *args,
                metadata,
                convert=replies.create_task,
                timeout=context.time_remaining(),
                input_bytes=len(inputs),
                **kwargs,
            )
        return _with_secrets(secrets, call) if secrets else call

    async def _run_sync(
        self,
        entry: Entry,
        key: tuple[str, int],
        args: tuple[Any, ...],
        metadata: TaskExecutionMetadata,
        input_bytes: int,
        context: grpc.aio.ServicerContext,
        kwargs: dict[str, Any],
    ) -> bytes:
        resource: connector_pb2.Resource = await self._d.do(
            key,
            *args,
            convert=cv.resource_to_v2,
            timeout=context.time_remaining(),
            input_bytes=input_bytes,
            task_execution_metadata=metadata,
            **kwargs,
        )
        try:
            envelope = cv.encode_envelope(resource)
        except cv.EnvelopeTooLarge as e:
            envelope = await self._spill(entry, resource, args[1], e)
        return replies.create_task(envelope)

    async def _spill(
        self, entry: Entry, resource: connector_pb2.Resource, output_prefix: str, error: cv.EnvelopeTooLarge
    ) -> bytes:
        """Write the outputs to ``<output_prefix>/outputs.pb`` and send the envelope without them (see module doc)."""
        reason = str(error)
        if resource.HasField("outputs") and output_prefix:
            uri = output_prefix.rstrip("/") + "/outputs.pb"
            data = resource.outputs.SerializeToString()
            try:
                await asyncio.get_running_loop().run_in_executor(self._d.executor, _write, uri, data)
            except Exception as e:
                reason = f"{reason}; writing the outputs to {uri} failed: {type(e).__name__}: {e}"
            else:
                slim = connector_pb2.Resource()
                slim.CopyFrom(resource)
                slim.ClearField("outputs")
                try:
                    log.info("%s: sync outputs (%d bytes) written to %s", entry.label, len(data), uri)
                    return cv.encode_envelope(slim)
                except cv.EnvelopeTooLarge as e2:
                    reason = f"{e2} even without outputs"
        elif not output_prefix:
            reason = f"{reason} and the request has no output_prefix to write the outputs to"
        log.warning("%s: %s", entry.label, reason)
        failed = connector_pb2.Resource(
            phase=int(Phase.FAILED),  # type: ignore[arg-type]
            message=f"{entry.name}: {reason}",
        )
        return cv.encode_envelope(failed)

    def _GetTask(self, request: Any, context: grpc.aio.ServicerContext) -> Awaitable[bytes]:
        found = self._polls.get(request) if type(request) is bytes else None  # PollReader.read's hit, without a call
        if found is None:
            found = self._gets.read(request, self.POLLS_REMEMBERED)
        key, resource_meta, connection = found
        entry = self._d.lookup(key)
        if entry.connector.is_sync:
            return self._from_envelope(entry, resource_meta)
        if connection is None:
            return self._d.get(key, resource_meta, convert=replies.get_task_v2, timeout=context.time_remaining())
        kwargs, secrets = _connection(connection)
        call = self._d.get(key, resource_meta, convert=replies.get_task_v2, timeout=context.time_remaining(), **kwargs)
        return _with_secrets(secrets, call) if secrets else call

    async def _from_envelope(self, entry: Entry, data: bytes) -> bytes:
        """A sync connector's GetTask: its Resource read back from the envelope its CreateTask answered."""
        op = entry.ops["get"]
        start = time.perf_counter()
        try:
            resource = cv.decode_envelope(data)
        except Exception as e:
            code, details = to_status(e, operation="get", category=entry.label, connector=entry.name)
            op.failed(code.name)
            log.warning("%s -> %s", details, code.name)
            raise CallFailed(code, details) from e
        finally:
            op.latency.observe(time.perf_counter() - start)
        op.success.inc()
        reply: bytes = connector_pb2.GetTaskResponse(resource=resource).SerializeToString()
        return reply

    def _DeleteTask(self, request: Any, context: grpc.aio.ServicerContext) -> Awaitable[bytes]:
        key, resource_meta, connection = self._deletes.read(request, self.POLLS_REMEMBERED)
        entry = self._d.lookup(key)
        if entry.connector.is_sync:
            entry.ops["delete"].success.inc()
            return _done(_DELETED)
        kwargs, secrets = _connection(connection)
        call = self._d.delete(key, resource_meta, convert=_deleted, timeout=context.time_remaining(), **kwargs)
        return _with_secrets(secrets, call) if secrets else call

    def _GetTaskMetrics(self, request: Any, context: grpc.aio.ServicerContext) -> Awaitable[Any]:
        req = parse(connector_pb2.GetTaskMetricsRequest, request)
        return self._d.get_metrics(
            cv.category_of(req),
            req.resource_meta,
            convert=_metrics_pb,
            timeout=context.time_remaining(),
            queries=list(req.queries),
            start_time=req.start_time,
            end_time=req.end_time,
            step=req.step,
        )

    def _GetTaskLogs(self, request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
        req = parse(connector_pb2.GetTaskLogsRequest, request)
        return self._d.get_logs(
            cv.category_of(req),
            req.resource_meta,
            convert=_logs_pb,
            timeout=context.time_remaining(),
            lines=req.lines,
            token=req.token,
        )

    CreateTask = rpc(_CreateTask)
    """Start a job (or run a sync connector to completion); answer its resource_meta (serialized reply)."""
    GetTask = rpc(_GetTask)
    """Poll a job (the hot path; a serialized reply); a sync connector's result is read back from the envelope."""
    DeleteTask = rpc(_DeleteTask)
    """Cancel a job; a no-op for a sync connector (its task finished inside CreateTask)."""
    GetTaskMetrics = rpc(_GetTaskMetrics)
    """The connector's metrics for a job (UNIMPLEMENTED when it has no get_metrics)."""
    GetTaskLogs = stream_rpc(_GetTaskLogs)
    """Stream every log page the connector produces (UNIMPLEMENTED when it has no get_logs)."""


def _deleted(_: None) -> bytes:
    return _DELETED


async def _done(value: bytes) -> bytes:
    return value


class ConnectorMetadataService:
    """``flyteidl2.connector.ConnectorMetadataService``: GetConnector and ListConnectors."""

    def __init__(self, dispatcher: Dispatcher) -> None:
        self._d = dispatcher
        self._listed = SnapshotReply(
            lambda infos: connector_pb2.ListConnectorsResponse(
                connectors=[cv.connector_to_v2(info.name, info.categories) for info in infos]
            )
        )

    async def _GetConnector(
        self, request: Any, context: grpc.aio.ServicerContext
    ) -> connector_pb2.GetConnectorResponse:
        req = parse(connector_pb2.GetConnectorRequest, request)
        info = self._d.get_connector(req.name)
        return connector_pb2.GetConnectorResponse(connector=cv.connector_to_v2(info.name, info.categories))

    GetConnector = rpc(_GetConnector)
    """One connector's metadata; unknown name → NOT_FOUND."""

    async def ListConnectors(
        self, request: Any, context: grpc.aio.ServicerContext
    ) -> connector_pb2.ListConnectorsResponse:
        """Every served connector with its task categories (sync ones included: they are served through CreateTask)."""
        return self._listed.get(self._d.list_connectors())


def _write(uri: str, data: bytes) -> None:
    import fsspec

    with fsspec.open(uri, "wb") as f:
        f.write(data)


class FlyteIdlV2:
    """The protocol adapter registering the two Flyte 2 services on a grpc.aio server."""

    name = "v2"
    service_names = (ASYNC_SERVICE, METADATA_SERVICE)

    def add_to_server(self, server: grpc.aio.Server, dispatcher: Dispatcher) -> None:
        """Register the services, with raw-bytes request handlers (malformed requests are INVALID_ARGUMENT)."""
        # The service descriptors (not only the messages) must be in the default pool for server reflection.
        importlib.import_module("flyteidl2.connector.service_pb2")
        a = AsyncConnectorService(dispatcher)
        m = ConnectorMetadataService(dispatcher)
        add_services(
            server,
            {
                ASYNC_SERVICE: [
                    unary(a.CreateTask, SERIALIZED),
                    unary(a.GetTask, SERIALIZED),
                    unary(a.DeleteTask, SERIALIZED),
                    unary(a.GetTaskMetrics, connector_pb2.GetTaskMetricsResponse),
                    server_stream(a.GetTaskLogs, connector_pb2.GetTaskLogsResponse),
                ],
                METADATA_SERVICE: [
                    unary(m.GetConnector, connector_pb2.GetConnectorResponse),
                    unary(m.ListConnectors, connector_pb2.ListConnectorsResponse),
                ],
            },
        )


ADAPTER = FlyteIdlV2()
"""What ``app.py`` loads for ``--protocol v2``."""
