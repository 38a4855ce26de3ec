"""A Resource whose outputs are a Flyte 2 ``Outputs`` proto is answered on every path: Flyte 2 and Flyte 1 GetTask,
and a sync connector's result through the Flyte 2 envelope (issue 18: GetTask used to fail where the sync path
worked, because the reply writer and the proto builder were different encoders)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import grpc
import pytest
from flyteidl.admin import agent_pb2
from flyteidl.service import agent_pb2_grpc
from flyteidl2.connector import connector_pb2, service_pb2_grpc
from flyteidl2.core import literals_pb2, tasks_pb2
from flyteidl2.task import common_pb2

from flyteconnect import AsyncConnectorBase, ConnectorRegistry, Phase, Resource, ResourceMeta, SyncConnectorBase
from flyteconnect.literals import literal_map_to_python
from flyteconnect.server import v2_convert as cv
from flyteconnect.server.app import ConnectorServer, ServerConfig
from flyteconnect.server.dispatch import DispatchConfig


def _outputs() -> common_pb2.Outputs:
    seven = literals_pb2.Literal(scalar=literals_pb2.Scalar(primitive=literals_pb2.Primitive(integer=7)))
    word = literals_pb2.Literal(scalar=literals_pb2.Scalar(primitive=literals_pb2.Primitive(string_value="w")))
    return common_pb2.Outputs(
        literals=[common_pb2.NamedLiteral(name="x", value=seven), common_pb2.NamedLiteral(name="s", value=word)]
    )


@dataclass
class Job(ResourceMeta):
    job_id: str


class OutputsProtoAsync(AsyncConnectorBase[Job]):
    name = "Outputs Proto Async"
    task_type_name = "outputs_proto"
    metadata_type = Job

    async def create(self, task_template: Any, output_prefix: str, inputs: Any = None, **kwargs: Any) -> Job:
        return Job("j")

    async def get(self, resource_meta: Job, **kwargs: Any) -> Resource:
        return Resource(phase=Phase.SUCCEEDED, outputs=_outputs())

    async def delete(self, resource_meta: Job, **kwargs: Any) -> None:
        return None


class OutputsProtoSync(SyncConnectorBase):
    name = "Outputs Proto Sync"
    task_type_name = "outputs_proto_sync"

    async def do(self, task_template: Any, output_prefix: str, inputs: Any = None, **kwargs: Any) -> Resource:
        return Resource(phase=Phase.SUCCEEDED, outputs=_outputs())


@pytest.fixture
async def channel() -> AsyncIterator[grpc.aio.Channel]:
    config = ServerConfig(
        host="127.0.0.1", port=0, metrics_port=None, dispatch=DispatchConfig(threads=2, stall_threshold=None)
    )
    registry = ConnectorRegistry([OutputsProtoAsync(), OutputsProtoSync()])
    async with ConnectorServer(registry, config) as server, grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as ch:
        yield ch


def _values(outputs: Any) -> dict[str, Any]:
    from flyteidl.core import literals_pb2 as literals_v1

    return literal_map_to_python(literals_v1.LiteralMap.FromString(outputs.SerializeToString()))


async def test_flyte2_get_task_answers_outputs_given_as_a_flyte2_proto(channel: grpc.aio.Channel) -> None:
    v2 = service_pb2_grpc.AsyncConnectorServiceStub(channel)
    category = connector_pb2.TaskCategory(name="outputs_proto")
    got = await v2.GetTask(
        connector_pb2.GetTaskRequest(task_category=category, resource_meta=Job("j").encode()), timeout=5
    )
    assert got.resource.phase == Phase.SUCCEEDED
    assert got.resource.outputs == _outputs()  # the connector's own message, names in its order
    assert _values(got.resource.outputs) == {"x": 7, "s": "w"}


async def test_flyte1_get_task_answers_the_same_literals(channel: grpc.aio.Channel) -> None:
    v1 = agent_pb2_grpc.AsyncAgentServiceStub(channel)
    category = agent_pb2.TaskCategory(name="outputs_proto")
    got = await v1.GetTask(agent_pb2.GetTaskRequest(task_category=category, resource_meta=Job("j").encode()), timeout=5)
    assert got.resource.phase == Phase.SUCCEEDED and got.resource.state == agent_pb2.SUCCEEDED
    assert literal_map_to_python(got.resource.outputs) == {"x": 7, "s": "w"}


async def test_a_sync_connectors_flyte2_outputs_travel_in_the_envelope(channel: grpc.aio.Channel) -> None:
    v2 = service_pb2_grpc.AsyncConnectorServiceStub(channel)
    template = tasks_pb2.TaskTemplate(type="outputs_proto_sync")
    created = await v2.CreateTask(connector_pb2.CreateTaskRequest(template=template, output_prefix="/tmp/o"), timeout=5)
    category = connector_pb2.TaskCategory(name="outputs_proto_sync")
    got = await v2.GetTask(
        connector_pb2.GetTaskRequest(task_category=category, resource_meta=created.resource_meta), timeout=5
    )
    assert got.resource.outputs == _outputs()


def test_every_proto_of_a_resource_comes_from_the_one_encoder() -> None:
    resource = Resource(phase=Phase.SUCCEEDED, outputs=_outputs(), message="m")
    from flyteconnect import encoding
    from flyteconnect.server import replies

    assert cv.resource_to_v2(resource).SerializeToString() == encoding.resource_v2(resource)
    # A Flyte 1 LiteralMap is a proto map: reserialized, its entries come in upb's hash order. Same message.
    assert resource.to_flyte_idl() == agent_pb2.Resource.FromString(encoding.resource_v1(resource))
    v2_reply = connector_pb2.GetTaskResponse(resource=cv.resource_to_v2(resource))
    assert replies.get_task_v2(resource) == v2_reply.SerializeToString()
    assert cv.outputs_to_v2(resource.outputs) is resource.outputs
    assert cv.outputs_to_v2({"x": 7, "s": "w"}) == _outputs()
