"""Hot requests parsed shallowly (nested messages as bytes, parsed on first use) and GetTask polls remembered."""

from __future__ import annotations

import json
from typing import Any

import grpc
import pytest
from flyteidl.admin import agent_pb2
from flyteidl.core import literals_pb2
from google.protobuf.descriptor import FieldDescriptor

from flyteconnect import ConnectorRegistry
from flyteconnect.literals import literal_map_to_python, to_literal_map
from flyteconnect.server import flyteidl_v1
from flyteconnect.server.dispatch import DispatchConfig, Dispatcher
from flyteconnect.server.shallow import shallow

from . import connectors
from .conftest import Stubs
from .test_errors import BAD_BYTES, _with_field, faulty
from .test_rpcs import create_request, get_request, template

TWINNED = [
    agent_pb2.CreateTaskRequest,
    agent_pb2.GetTaskRequest,
    agent_pb2.DeleteTaskRequest,
    agent_pb2.CreateRequestHeader,
    agent_pb2.ExecuteTaskSyncRequest,
]


@pytest.mark.parametrize("cls", TWINNED, ids=lambda c: c.DESCRIPTOR.name)
def test_a_twin_has_the_same_fields_with_messages_as_bytes(cls: Any) -> None:
    twin = shallow(cls)
    assert shallow(cls) is twin and twin.DESCRIPTOR.name == cls.DESCRIPTOR.name
    real = {f.name: (f.number, f.type) for f in cls.DESCRIPTOR.fields}
    mine = {f.name: (f.number, f.type) for f in twin.DESCRIPTOR.fields}
    message, as_bytes = FieldDescriptor.TYPE_MESSAGE, FieldDescriptor.TYPE_BYTES
    assert mine == {name: (number, as_bytes if kind == message else kind) for name, (number, kind) in real.items()}


def test_a_twin_gives_the_nested_messages_bytes() -> None:
    request = create_request("echo", inputs={"x": 5}, kind="scalars")
    twin = shallow(agent_pb2.CreateTaskRequest).FromString(request.SerializeToString())
    assert twin.template == request.template.SerializeToString()
    assert twin.inputs == request.inputs.SerializeToString()
    assert twin.task_execution_metadata == request.task_execution_metadata.SerializeToString()
    assert twin.output_prefix == request.output_prefix


def test_a_twin_keeps_oneofs_and_refuses_repeated_fields() -> None:
    twin = shallow(agent_pb2.ExecuteTaskSyncRequest)
    header = agent_pb2.CreateRequestHeader(output_prefix="s3://x")
    for request, part, payload in [
        (agent_pb2.ExecuteTaskSyncRequest(header=header), "header", header.SerializeToString()),
        (agent_pb2.ExecuteTaskSyncRequest(inputs=literals_pb2.LiteralMap()), "inputs", b""),  # set, though empty
        (agent_pb2.ExecuteTaskSyncRequest(), None, None),
    ]:
        parsed = twin.FromString(request.SerializeToString())
        assert parsed.WhichOneof("part") == part
        if part is not None:
            assert getattr(parsed, part) == payload
    with pytest.raises(ValueError, match="repeated fields have no shallow twin"):
        shallow(agent_pb2.ListAgentsResponse)


async def test_nested_messages_are_checked_when_the_connector_reads_them(stubs: Stubs) -> None:
    create = stubs.channel.unary_unary("/flyteidl.service.AsyncAgentService/CreateTask")
    # Faulty's create in mode "ok" reads only the template: metadata it never reads is not parsed.
    unread = _with_field(create_request("faulty", mode="ok"), "task_execution_metadata", BAD_BYTES)
    reply = agent_pb2.CreateTaskResponse.FromString(await create(unread, timeout=5))
    assert json.loads(reply.resource_meta)["mode"] == "ok"
    # Echo's create reads the namespace from the metadata.
    read = _with_field(create_request("echo", inputs={"x": 1}), "task_execution_metadata", BAD_BYTES)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await create(read, timeout=5)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "malformed flyteidl.admin.TaskExecutionMetadata in the request" in (info.value.details() or "")


class _Context:
    def time_remaining(self) -> None:
        return None

    async def abort(self, code: grpc.StatusCode, details: str) -> None:
        raise AssertionError(f"{code}: {details}")


async def test_polls_are_remembered_by_their_bytes_and_bounded() -> None:
    dispatcher = Dispatcher(ConnectorRegistry(connectors.ALL), DispatchConfig(stall_threshold=None))
    service = flyteidl_v1.AsyncConnectorService(dispatcher)
    service.POLLS_REMEMBERED = 4
    jobs = [f"queued-{i}" for i in range(10)]
    for _ in range(2):  # the second round's requests are equal bytes, in new objects
        for job in jobs:
            raw = get_request("faulty", faulty(job)).SerializeToString()
            reply = agent_pb2.GetTaskResponse.FromString(await service.GetTask(bytes(bytearray(raw)), _Context()))
            assert reply.resource.message == job  # each answer is its own job's: the connector ran for it
    assert len(service._polls) == 4
    assert set(service._polls) == {get_request("faulty", faulty(job)).SerializeToString() for job in jobs[-4:]}
    # A request proto (a direct call) gives the same answer and is not remembered.
    reply = agent_pb2.GetTaskResponse.FromString(await service.GetTask(get_request("faulty", faulty("x")), _Context()))
    assert reply.resource.message == "x" and len(service._polls) == 4


async def test_servicer_methods_called_directly_with_request_protos() -> None:
    dispatcher = Dispatcher(ConnectorRegistry(connectors.ALL), DispatchConfig(stall_threshold=None))
    created = await flyteidl_v1.AsyncConnectorService(dispatcher).CreateTask(
        create_request("echo", inputs={"x": 3}), _Context()
    )
    assert json.loads(agent_pb2.CreateTaskResponse.FromString(created).resource_meta)["job_id"] == "3-ns"

    async def messages() -> Any:
        yield agent_pb2.ExecuteTaskSyncRequest(header=agent_pb2.CreateRequestHeader(template=template("adder")))
        yield agent_pb2.ExecuteTaskSyncRequest(inputs=to_literal_map({"a": 2, "b": 5}))

    replies = [r async for r in flyteidl_v1.SyncConnectorService(dispatcher).ExecuteTaskSync(messages(), _Context())]
    (reply,) = replies
    outputs = agent_pb2.ExecuteTaskSyncResponse.FromString(reply).header.resource.outputs
    assert literal_map_to_python(outputs) == {"sum": 7}
