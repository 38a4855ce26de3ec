"""The two wire protocols FakePropeller speaks: Flyte 1 (flyteidl AsyncAgentService...) and Flyte 2 (flyteidl2).

Each adapter builds requests from Flyte 1 protos (the messages are wire-compatible where it matters) and reads
responses into one protocol-neutral shape, so the Propeller logic in ``propeller.py`` is written once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from flyteidl.core import literals_pb2, tasks_pb2

from flyteconnect.connector import TaskCategory

__all__ = ["Advertised", "ReadResource", "V1Wire", "V2Wire", "wire_for"]


@dataclass(frozen=True)
class Advertised:
    """One entry of ListAgents / ListConnectors."""

    name: str
    task_types: list[str]
    categories: list[TaskCategory]
    is_sync: bool


@dataclass
class ReadResource:
    """A Resource proto of either protocol, read into what Propeller uses."""

    phase: int
    state: int
    message: str
    outputs: literals_pb2.LiteralMap | None
    log_links: list[Any] = field(default_factory=list)
    custom_info: dict[str, Any] = field(default_factory=dict)
    error_code: str = ""


def _struct_dict(pb: Any, has: bool) -> dict[str, Any]:
    if not has:
        return {}
    from google.protobuf import json_format

    return dict(json_format.MessageToDict(pb))


class V1Wire:
    """flyteidl (Flyte 1): what Propeller v1.16.8 dials."""

    protocol = "v1"
    list_method = "ListAgents"
    has_sync_service = True

    def __init__(self, channel: Any) -> None:
        from flyteidl.service import agent_pb2_grpc

        self.metadata = agent_pb2_grpc.AgentMetadataServiceStub(channel)
        self.async_ = agent_pb2_grpc.AsyncAgentServiceStub(channel)
        self.sync = agent_pb2_grpc.SyncAgentServiceStub(channel)

    def list_request(self) -> Any:
        from flyteidl.admin import agent_pb2

        return agent_pb2.ListAgentsRequest()

    async def list_connectors(self, request: Any, timeout: float | None) -> Any:
        return await self.metadata.ListAgents(request, timeout=timeout)

    @staticmethod
    def advertised(response: Any) -> list[Advertised]:
        """What a ListAgents response advertises."""
        return [
            Advertised(
                a.name,
                list(a.supported_task_types),
                [TaskCategory.from_flyte_idl(c) for c in a.supported_task_categories],
                a.is_sync,
            )
            for a in response.agents
        ]

    def create_request(self, template: tasks_pb2.TaskTemplate, inputs: Any, prefix: str, meta: Any, conn: Any) -> Any:
        from flyteidl.admin import agent_pb2

        return agent_pb2.CreateTaskRequest(
            inputs=inputs, template=template, output_prefix=prefix, task_execution_metadata=meta
        )

    async def create(self, request: Any, timeout: float | None) -> Any:
        return await self.async_.CreateTask(request, timeout=timeout)

    def get_request(self, category: TaskCategory, meta: bytes, prefix: str, conn: Any) -> Any:
        from flyteidl.admin import agent_pb2

        return agent_pb2.GetTaskRequest(
            task_type=category.name, task_category=category.to_flyte_idl(), resource_meta=meta, output_prefix=prefix
        )

    async def get(self, request: Any, timeout: float | None) -> Any:
        return (await self.async_.GetTask(request, timeout=timeout)).resource

    def delete_request(self, category: TaskCategory, meta: bytes, conn: Any) -> Any:
        from flyteidl.admin import agent_pb2

        return agent_pb2.DeleteTaskRequest(
            task_type=category.name, task_category=category.to_flyte_idl(), resource_meta=meta
        )

    async def delete(self, request: Any, timeout: float | None) -> Any:
        return await self.async_.DeleteTask(request, timeout=timeout)

    def sync_requests(self, template: tasks_pb2.TaskTemplate, inputs: Any, prefix: str, meta: Any) -> list[Any]:
        from flyteidl.admin import agent_pb2

        # Propeller leaves max_dataset_size_bytes unset.
        header = agent_pb2.CreateRequestHeader(template=template, output_prefix=prefix, task_execution_metadata=meta)
        return [agent_pb2.ExecuteTaskSyncRequest(header=header), agent_pb2.ExecuteTaskSyncRequest(inputs=inputs)]

    def sync_call(self, timeout: float | None) -> Any:
        return self.sync.ExecuteTaskSync(timeout=timeout)

    @staticmethod
    def read(resource: Any, with_agent_error: bool) -> ReadResource:
        return ReadResource(
            phase=resource.phase,
            state=resource.state,
            message=resource.message,
            outputs=resource.outputs if resource.HasField("outputs") else None,
            log_links=list(resource.log_links),
            custom_info=_struct_dict(resource.custom_info, resource.HasField("custom_info")),
            # Propeller copies agent_error only on the sync path (GetTask drops it).
            error_code=resource.agent_error.code if with_agent_error and resource.HasField("agent_error") else "",
        )


class V2Wire:
    """flyteidl2 (Flyte 2): AsyncConnectorService and ConnectorMetadataService; there is no sync service."""

    protocol = "v2"
    list_method = "ListConnectors"
    has_sync_service = False

    def __init__(self, channel: Any) -> None:
        from flyteidl2.connector import service_pb2_grpc

        self.metadata = service_pb2_grpc.ConnectorMetadataServiceStub(channel)
        self.async_ = service_pb2_grpc.AsyncConnectorServiceStub(channel)

    def list_request(self) -> Any:
        from flyteidl2.connector import connector_pb2

        return connector_pb2.ListConnectorsRequest()

    async def list_connectors(self, request: Any, timeout: float | None) -> Any:
        return await self.metadata.ListConnectors(request, timeout=timeout)

    @staticmethod
    def advertised(response: Any) -> list[Advertised]:
        """What a ListConnectors response advertises (Flyte 2 has no is_sync: everything is async)."""
        return [
            Advertised(c.name, [], [TaskCategory.from_flyte_idl(x) for x in c.supported_task_categories], False)
            for c in response.connectors
        ]

    @staticmethod
    def _convert(pb: Any, cls: Any) -> Any:
        out = cls()
        out.ParseFromString(pb.SerializeToString())
        return out

    def create_request(self, template: tasks_pb2.TaskTemplate, inputs: Any, prefix: str, meta: Any, conn: Any) -> Any:
        from flyteidl2.connector import connector_pb2
        from flyteidl2.core import literals_pb2 as literals2
        from flyteidl2.core import tasks_pb2 as tasks2
        from flyteidl2.task import common_pb2

        named = [
            common_pb2.NamedLiteral(name=name, value=self._convert(lit, literals2.Literal))
            for name, lit in sorted(inputs.literals.items())
        ]
        request = connector_pb2.CreateTaskRequest(
            inputs=common_pb2.Inputs(literals=named),
            template=self._convert(template, tasks2.TaskTemplate),
            output_prefix=prefix,
            task_execution_metadata=self._convert(meta, connector_pb2.TaskExecutionMetadata),
        )
        if conn is not None:
            request.connection.CopyFrom(conn)
        return request

    async def create(self, request: Any, timeout: float | None) -> Any:
        return await self.async_.CreateTask(request, timeout=timeout)

    def get_request(self, category: TaskCategory, meta: bytes, prefix: str, conn: Any) -> Any:
        from flyteidl2.connector import connector_pb2

        request = connector_pb2.GetTaskRequest(
            task_category=connector_pb2.TaskCategory(name=category.name, version=category.version),
            resource_meta=meta,
            output_prefix=prefix,
        )
        if conn is not None:
            request.connection.CopyFrom(conn)
        return request

    async def get(self, request: Any, timeout: float | None) -> Any:
        return (await self.async_.GetTask(request, timeout=timeout)).resource

    def delete_request(self, category: TaskCategory, meta: bytes, conn: Any) -> Any:
        from flyteidl2.connector import connector_pb2

        request = connector_pb2.DeleteTaskRequest(
            task_category=connector_pb2.TaskCategory(name=category.name, version=category.version),
            resource_meta=meta,
        )
        if conn is not None:
            request.connection.CopyFrom(conn)
        return request

    async def delete(self, request: Any, timeout: float | None) -> Any:
        return await self.async_.DeleteTask(request, timeout=timeout)

    def sync_requests(self, template: tasks_pb2.TaskTemplate, inputs: Any, prefix: str, meta: Any) -> list[Any]:
        raise NotImplementedError("Flyte 2 has no sync service")

    def sync_call(self, timeout: float | None) -> Any:
        raise NotImplementedError("Flyte 2 has no sync service")

    @staticmethod
    def read(resource: Any, with_agent_error: bool) -> ReadResource:
        from flyteconnect.models import LiteralMap

        outputs = LiteralMap.from_flyte_idl(resource.outputs).to_flyte_idl() if resource.HasField("outputs") else None
        return ReadResource(
            phase=resource.phase,
            state=0,  # Flyte 2's Resource has no deprecated state: an UNDEFINED phase reads as a retryable failure
            message=resource.message,
            outputs=outputs,
            log_links=list(resource.log_links),
            custom_info=_struct_dict(resource.custom_info, resource.HasField("custom_info")),
        )


def connection_proto(connection: Any) -> Any:
    """A ``flyteidl2.core.Connection`` from a proto or a dict ``{"secrets": {...}, "configs": {...}}``."""
    if connection is None or not isinstance(connection, Mapping):
        return connection
    from flyteidl2.connector import connector_pb2

    cls = connector_pb2.CreateTaskRequest.DESCRIPTOR.fields_by_name["connection"].message_type._concrete_class
    return cls(
        task_type=str(connection.get("task_type", "")),
        secrets={str(k): str(v) for k, v in dict(connection.get("secrets", {})).items()},
        configs={str(k): str(v) for k, v in dict(connection.get("configs", {})).items()},
    )


def wire_for(protocol: str, channel: Any) -> V1Wire | V2Wire:
    """The adapter for ``protocol`` ("v1" or "v2") on ``channel``."""
    if protocol == "v1":
        return V1Wire(channel)
    if protocol == "v2":
        return V2Wire(channel)
    raise ValueError(f"protocol must be 'v1' or 'v2', got {protocol!r}")
