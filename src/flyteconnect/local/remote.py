"""Run tasks against a connector server over gRPC, as Propeller does (Flyte 1 ``flyteidl.service`` agent services).

``ListAgents`` decides sync or async per task category (cached per client); async tasks go through
CreateTask / GetTask polling / DeleteTask, sync ones through one ExecuteTaskSync exchange (header, inputs, half-close,
one header response). gRPC errors become flyteconnect errors (NOT_FOUND → ConnectorNotFound, INVALID_ARGUMENT →
InvalidRequest, UNAVAILABLE → TransientError, others → ConnectorError naming the status).

Other protocols (Flyte 2's ``flyteidl2.connector``) plug in through ``PROTOCOLS``: a name mapped to a factory
``(target, tls, rpc_timeout) -> Backend``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from flyteidl.admin import agent_pb2
from flyteidl.service import agent_pb2_grpc

from flyteconnect.connector import Phase, Resource, TaskCategory
from flyteconnect.errors import ConnectorError, ConnectorNotFound, FlyteConnectError, InvalidRequest, TransientError
from flyteconnect.local.backend import Backend, Job

__all__ = ["PROTOCOLS", "FlyteIdlV1Client", "TlsOptions", "connect", "make_channel"]

_MAX_MESSAGE = 64 * 1024 * 1024


@dataclass(frozen=True)
class TlsOptions:
    """Client TLS: trust ``ca_cert`` (system roots when None); ``client_cert``/``client_key`` for mutual TLS."""

    ca_cert: str | None = None
    client_cert: str | None = None
    client_key: str | None = None
    server_name: str | None = None
    """Override the name checked against the server certificate (e.g. when dialling an IP)."""

    def credentials(self) -> grpc.ChannelCredentials:
        """The gRPC channel credentials."""
        if (self.client_cert is None) != (self.client_key is None):
            raise ValueError("mutual TLS needs both a client certificate and a client key")

        def read(path: str | None) -> bytes | None:
            return Path(path).read_bytes() if path else None

        return grpc.ssl_channel_credentials(
            root_certificates=read(self.ca_cert),
            private_key=read(self.client_key),
            certificate_chain=read(self.client_cert),
        )


def make_channel(target: str, tls: TlsOptions | None = None) -> grpc.aio.Channel:
    """A grpc.aio channel to ``target`` (plaintext unless ``tls``), bound to the running event loop."""
    options: list[tuple[str, Any]] = [
        ("grpc.max_receive_message_length", _MAX_MESSAGE),
        ("grpc.max_send_message_length", _MAX_MESSAGE),
    ]
    if tls is None:
        return grpc.aio.insecure_channel(target, options=options)
    if tls.server_name:
        options.append(("grpc.ssl_target_name_override", tls.server_name))
    return grpc.aio.secure_channel(target, tls.credentials(), options=options)


_CODE_ERRORS: dict[grpc.StatusCode, Callable[[str], FlyteConnectError]] = {
    grpc.StatusCode.NOT_FOUND: ConnectorNotFound,
    grpc.StatusCode.INVALID_ARGUMENT: InvalidRequest,
    grpc.StatusCode.UNAVAILABLE: lambda m: TransientError(m, code="UNAVAILABLE"),
    grpc.StatusCode.DEADLINE_EXCEEDED: lambda m: TransientError(m, code="DEADLINE_EXCEEDED"),
    grpc.StatusCode.RESOURCE_EXHAUSTED: lambda m: TransientError(m, code="RESOURCE_EXHAUSTED"),
}


def rpc_error(op: str, target: str, e: grpc.aio.AioRpcError) -> FlyteConnectError:
    """The flyteconnect error for a failed RPC ``op`` on ``target``."""
    code = e.code()
    message = f"{op} on {target} failed with {code.name}: {e.details() or ''}".rstrip(": ")
    make = _CODE_ERRORS.get(code)
    if make is not None:
        return make(message)
    return ConnectorError(message, code=code.name)


_STATE_TO_PHASE = {
    agent_pb2.PENDING: Phase.QUEUED,
    agent_pb2.RUNNING: Phase.RUNNING,
    agent_pb2.SUCCEEDED: Phase.SUCCEEDED,
    agent_pb2.PERMANENT_FAILURE: Phase.FAILED,
    agent_pb2.RETRYABLE_FAILURE: Phase.RETRYABLE_FAILED,
}


def resource_from_v1(pb: agent_pb2.Resource) -> Resource:
    """A Resource from the wire; phase UNDEFINED falls back to the deprecated ``state``, as Propeller does."""
    resource = Resource.from_flyte_idl(pb)
    if pb.phase == Phase.UNDEFINED:
        resource.phase = _STATE_TO_PHASE.get(pb.state, Phase.RETRYABLE_FAILED)
    return resource


class FlyteIdlV1Client:
    """A Backend speaking Flyte 1's AsyncAgentService, SyncAgentService and AgentMetadataService."""

    def __init__(self, target: str, tls: TlsOptions | None = None, rpc_timeout: float = 30.0) -> None:
        self.target = target
        self.tls = tls
        self.rpc_timeout = rpc_timeout
        self._channel: grpc.aio.Channel | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._sync_by_category: dict[TaskCategory, bool] | None = None
        self._listing: asyncio.Lock | None = None
        self._no_listing = False

    def describe(self) -> str:
        """See Backend."""
        return f"server {self.target}"

    def channel(self) -> grpc.aio.Channel:
        """The channel for the running loop (a new one if the loop changed, e.g. across ``LocalRunner.run`` calls)."""
        loop = asyncio.get_running_loop()
        if self._channel is None or self._loop is not loop:
            self._channel = make_channel(self.target, self.tls)
            self._loop = loop
            self._listing = asyncio.Lock()
        return self._channel

    async def _categories(self) -> dict[TaskCategory, bool]:
        channel = self.channel()
        assert self._listing is not None
        async with self._listing:  # one ListAgents for many concurrent runs
            if self._sync_by_category is None:
                stub = agent_pb2_grpc.AgentMetadataServiceStub(channel)
                try:
                    response = await stub.ListAgents(agent_pb2.ListAgentsRequest(), timeout=self.rpc_timeout)
                except grpc.aio.AioRpcError as e:
                    if e.code() != grpc.StatusCode.UNIMPLEMENTED:
                        raise rpc_error("ListAgents", self.target, e) from None
                    self._no_listing = True  # Propeller's fallback too: everything goes to CreateTask
                    self._sync_by_category = {}
                else:
                    found: dict[TaskCategory, bool] = {}
                    for agent in response.agents:
                        # Propeller registers the deprecated type names at version 0, then the categories.
                        for name in agent.supported_task_types:
                            found[TaskCategory(name, 0)] = agent.is_sync
                        for category in agent.supported_task_categories:
                            found[TaskCategory(category.name, category.version)] = agent.is_sync
                    self._sync_by_category = found
            return self._sync_by_category

    async def is_sync(self, category: TaskCategory) -> bool:
        """See Backend: from ListAgents; a category the server does not list is ConnectorNotFound."""
        categories = await self._categories()
        if self._no_listing:
            return False
        if category not in categories:
            served = ", ".join(sorted(str(c) for c in categories)) or "nothing"
            raise ConnectorNotFound(f"the server at {self.target} serves no connector for {category} (only {served})")
        return categories[category]

    async def do(self, job: Job) -> Resource:
        """See Backend: one ExecuteTaskSync exchange."""
        stub = agent_pb2_grpc.SyncAgentServiceStub(self.channel())
        header = agent_pb2.CreateRequestHeader(
            template=job.template, output_prefix=job.output_prefix, task_execution_metadata=job.execution_metadata
        )
        # No deadline here: the runner enforces the task's timeout by cancelling, which cancels the RPC.
        call = stub.ExecuteTaskSync()
        try:
            await call.write(agent_pb2.ExecuteTaskSyncRequest(header=header))
            await call.write(agent_pb2.ExecuteTaskSyncRequest(inputs=job.inputs))
            await call.done_writing()
            response = await call.read()
        except grpc.aio.AioRpcError as e:
            raise rpc_error("ExecuteTaskSync", self.target, e) from None
        except asyncio.CancelledError:
            call.cancel()
            raise
        if response is grpc.aio.EOF:
            code = await call.code()
            raise ConnectorError(f"ExecuteTaskSync on {self.target} ended ({code.name}) without a response")
        if response.WhichOneof("res") != "header":
            call.cancel()
            raise ConnectorError(f"ExecuteTaskSync on {self.target}: expected a header response, got outputs")
        call.cancel()  # we read the one response we need; do not wait for the stream to drain
        return resource_from_v1(response.header.resource)

    async def unary(self, name: str, method: Any, request: Any) -> Any:
        """Call the unary RPC ``method`` with the per-call timeout; failures become flyteconnect errors."""
        try:
            return await method(request, timeout=self.rpc_timeout)
        except grpc.aio.AioRpcError as e:
            raise rpc_error(name, self.target, e) from None

    async def create(self, job: Job) -> bytes:
        """See Backend: CreateTask."""
        stub = agent_pb2_grpc.AsyncAgentServiceStub(self.channel())
        request = agent_pb2.CreateTaskRequest(
            inputs=job.inputs,
            template=job.template,
            output_prefix=job.output_prefix,
            task_execution_metadata=job.execution_metadata,
        )
        response = await self.unary("CreateTask", stub.CreateTask, request)
        return bytes(response.resource_meta)

    async def get(self, job: Job, handle: bytes) -> Resource:
        """See Backend: GetTask, with the fields Propeller sets."""
        stub = agent_pb2_grpc.AsyncAgentServiceStub(self.channel())
        category = job.category
        request = agent_pb2.GetTaskRequest(
            task_type=category.name,
            resource_meta=handle,
            task_category=category.to_flyte_idl(),
            output_prefix=job.output_prefix,
        )
        response = await self.unary("GetTask", stub.GetTask, request)
        return resource_from_v1(response.resource)

    async def delete(self, job: Job, handle: bytes) -> None:
        """See Backend: DeleteTask."""
        stub = agent_pb2_grpc.AsyncAgentServiceStub(self.channel())
        category = job.category
        request = agent_pb2.DeleteTaskRequest(
            task_type=category.name, resource_meta=handle, task_category=category.to_flyte_idl()
        )
        await self.unary("DeleteTask", stub.DeleteTask, request)

    async def aclose(self) -> None:
        """See Backend: close the channel (a later call opens a new one)."""
        channel, self._channel, self._loop = self._channel, None, None
        if channel is not None:
            await channel.close()


ProtocolFactory = Callable[[str, "TlsOptions | None", float], Backend]


def _flyteidl_v2(target: str, tls: TlsOptions | None, rpc_timeout: float) -> Backend:
    from flyteconnect.local.remote_v2 import FlyteIdlV2Client  # imported only when Flyte 2 is asked for

    return FlyteIdlV2Client(target, tls, rpc_timeout)


PROTOCOLS: dict[str, ProtocolFactory] = {"v1": FlyteIdlV1Client, "v2": _flyteidl_v2}
"""Client protocols by name (``flyteconnect run --protocol``); a Flyte 2 client registers ``"v2"`` here."""


def connect(target: str, *, protocol: str = "v1", tls: TlsOptions | None = None, rpc_timeout: float = 30.0) -> Backend:
    """A Backend for the connector server at ``target`` (``host:port``) speaking ``protocol``."""
    try:
        factory = PROTOCOLS[protocol]
    except KeyError:
        raise ValueError(f"unknown protocol {protocol!r}; known: {', '.join(sorted(PROTOCOLS))}") from None
    return factory(target, tls, rpc_timeout)
