"""Propeller's calls through flyteidl's generated stubs (Flyte 1), for the multi-replica tests."""

from __future__ import annotations

import grpc
from flyteidl.admin import agent_pb2
from flyteidl.core import identifier_pb2, tasks_pb2
from flyteidl.service import agent_pb2_grpc

TASK_TYPE = "remote_job"


def create_request(execution: str = "exec-1", attempt: int = 0) -> agent_pb2.CreateTaskRequest:
    """A CreateTask for one attempt of one task execution, as Propeller sends it."""
    template = tasks_pb2.TaskTemplate(
        id=identifier_pb2.Identifier(resource_type=identifier_pb2.TASK, name="remote"), type=TASK_TYPE
    )
    execution_id = identifier_pb2.TaskExecutionIdentifier(
        task_id=template.id,
        node_execution_id=identifier_pb2.NodeExecutionIdentifier(
            node_id="n0",
            execution_id=identifier_pb2.WorkflowExecutionIdentifier(project="p", domain="d", name=execution),
        ),
        retry_attempt=attempt,
    )
    return agent_pb2.CreateTaskRequest(
        template=template,
        output_prefix="s3://bucket/out",
        task_execution_metadata=agent_pb2.TaskExecutionMetadata(task_execution_id=execution_id),
    )


def category() -> agent_pb2.TaskCategory:
    """The connector's task category."""
    return agent_pb2.TaskCategory(name=TASK_TYPE, version=0)


class Client:
    """A synchronous Flyte 1 client for one address (a replica or the balancer)."""

    def __init__(self, address: str) -> None:
        self.channel = grpc.insecure_channel(address)
        self.stub = agent_pb2_grpc.AsyncAgentServiceStub(self.channel)

    def create(self, execution: str = "exec-1", attempt: int = 0) -> bytes:
        """CreateTask; the resource_meta."""
        return bytes(self.stub.CreateTask(create_request(execution, attempt), timeout=20).resource_meta)

    def get(self, meta: bytes) -> agent_pb2.Resource:
        """GetTask; the Resource."""
        request = agent_pb2.GetTaskRequest(task_category=category(), resource_meta=meta)
        return self.stub.GetTask(request, timeout=20).resource

    def delete(self, meta: bytes) -> None:
        """DeleteTask."""
        self.stub.DeleteTask(agent_pb2.DeleteTaskRequest(task_category=category(), resource_meta=meta), timeout=20)

    def close(self) -> None:
        """Close the channel."""
        self.channel.close()
