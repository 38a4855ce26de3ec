"""Run tasks against a connector server over Flyte 2's ``flyteidl2.connector`` services, as a Flyte 2 executor does.

Flyte 2 has no sync service: every task goes through CreateTask / GetTask polling / DeleteTask (a flyteconnect server
runs a sync connector inside CreateTask and answers the first GetTask from the resource_meta). ``ListConnectors``
tells which categories the server serves. Requests may carry a ``Connection`` (secrets and configs for the
connector). The job's Flyte 1 protos are re-parsed as their wire-compatible Flyte 2 counterparts.
"""

from __future__ import annotations

from collections.abc import Mapping

import grpc
from flyteidl2.connector import connector_pb2, service_pb2_grpc
from flyteidl2.core import security_pb2
from flyteidl2.core import tasks_pb2 as tasks_v2
from flyteidl2.task import common_pb2

from flyteconnect.connector import Resource, TaskCategory
from flyteconnect.errors import ConnectorNotFound
from flyteconnect.local.backend import Job
from flyteconnect.local.remote import FlyteIdlV1Client, TlsOptions, rpc_error

__all__ = ["FlyteIdlV2Client"]


class FlyteIdlV2Client(FlyteIdlV1Client):
    """A Backend speaking Flyte 2's AsyncConnectorService and ConnectorMetadataService (channel handling shared)."""

    def __init__(
        self,
        target: str,
        tls: TlsOptions | None = None,
        rpc_timeout: float = 30.0,
        *,
        secrets: Mapping[str, str] | None = None,
        configs: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(target, tls, rpc_timeout)
        self._connection = (
            security_pb2.Connection(secrets=dict(secrets or {}), configs=dict(configs or {}))
            if secrets or configs
            else None
        )

    def describe(self) -> str:
        """See Backend."""
        return f"server {self.target} (Flyte 2)"

    async def _categories(self) -> dict[TaskCategory, bool]:
        self.channel()  # (re)binds the channel and the listing lock to the running loop
        assert self._listing is not None
        async with self._listing:
            if self._sync_by_category is None:
                stub = service_pb2_grpc.ConnectorMetadataServiceStub(self.channel())
                try:
                    response = await stub.ListConnectors(
                        connector_pb2.ListConnectorsRequest(), timeout=self.rpc_timeout
                    )
                except grpc.aio.AioRpcError as e:
                    raise rpc_error("ListConnectors", self.target, e) from None
                self._sync_by_category = {
                    TaskCategory(c.name, c.version): False
                    for connector in response.connectors
                    for c in connector.supported_task_categories
                }
            return self._sync_by_category

    async def is_sync(self, category: TaskCategory) -> bool:
        """See Backend: always False (Flyte 2 runs every task through CreateTask); unknown categories are
        ConnectorNotFound."""
        categories = await self._categories()
        if category not in categories:
            served = ", ".join(sorted(str(c) for c in categories)) or "nothing"
            raise ConnectorNotFound(f"the server at {self.target} serves no connector for {category} (only {served})")
        return False

    async def do(self, job: Job) -> Resource:
        """Flyte 2 has no sync service: run the job through create and get instead."""
        handle = await self.create(job)
        return await self.get(job, handle)

    def _category(self, job: Job) -> connector_pb2.TaskCategory:
        c = job.category
        return connector_pb2.TaskCategory(name=c.name, version=c.version)

    async def create(self, job: Job) -> bytes:
        """See Backend: CreateTask with ``Inputs`` and the connection."""
        stub = service_pb2_grpc.AsyncConnectorServiceStub(self.channel())
        request = connector_pb2.CreateTaskRequest(
            inputs=common_pb2.Inputs.FromString(job.inputs.SerializeToString()),
            template=tasks_v2.TaskTemplate.FromString(job.template.SerializeToString()),
            output_prefix=job.output_prefix,
            task_execution_metadata=connector_pb2.TaskExecutionMetadata.FromString(
                job.execution_metadata.SerializeToString()
            ),
            connection=self._connection,
        )
        response = await self.unary("CreateTask", stub.CreateTask, request)
        return bytes(response.resource_meta)

    async def get(self, job: Job, handle: bytes) -> Resource:
        """See Backend: GetTask."""
        stub = service_pb2_grpc.AsyncConnectorServiceStub(self.channel())
        request = connector_pb2.GetTaskRequest(
            resource_meta=handle,
            task_category=self._category(job),
            output_prefix=job.output_prefix,
            connection=self._connection,
        )
        response = await self.unary("GetTask", stub.GetTask, request)
        return Resource.from_flyte_idl(response.resource)

    async def delete(self, job: Job, handle: bytes) -> None:
        """See Backend: DeleteTask."""
        stub = service_pb2_grpc.AsyncConnectorServiceStub(self.channel())
        request = connector_pb2.DeleteTaskRequest(
            resource_meta=handle, task_category=self._category(job), connection=self._connection
        )
        await self.unary("DeleteTask", stub.DeleteTask, request)
