"""The hot RPCs' replies written as wire bytes (``server.replies``) are the messages the proto path builds."""

from __future__ import annotations

from typing import Any

import pytest
from flyteidl.admin import agent_pb2
from flyteidl.core import execution_pb2
from flyteidl2.connector import connector_pb2
from flyteidl2.core import execution_pb2 as execution_v2

from flyteconnect import Phase, Resource
from flyteconnect.literals import to_literal_map
from flyteconnect.server import replies
from flyteconnect.server.v2_convert import resource_to_v2

PHASES = [p for p in Phase if p is not Phase.UNDEFINED]
OUTPUTS: list[Any] = [None, {}, {"n": 1234}, {"n": 1, "s": "x", "f": 0.5, "b": False, "l": [1, 2]}]


def _resources() -> list[Resource]:
    out = []
    for phase in PHASES:
        for outputs in OUTPUTS:
            out.append(Resource(phase=phase, outputs=outputs))
        out.append(Resource(phase=phase, message="job 7 is running" * 20))
        out.append(
            Resource(
                phase=phase,
                message="m",
                outputs={"n": 1},
                log_links=[execution_pb2.TaskLog(uri="https://logs/1", name="Console")],
                custom_info={"job": {"id": 7, "tags": ["a"]}},
            )
        )
    return out


RESOURCES = _resources()
IDS = [f"{r.phase.name}-{i}" for i, r in enumerate(RESOURCES)]


@pytest.mark.parametrize("resource", RESOURCES, ids=IDS)
def test_flyte1_replies_are_the_proto_paths_messages(resource: Resource) -> None:
    expected = agent_pb2.GetTaskResponse(resource=resource.to_flyte_idl())
    got = agent_pb2.GetTaskResponse.FromString(replies.get_task_v1(resource))
    assert got == expected
    assert got.resource.state == expected.resource.state  # the deprecated state older Propellers read
    # Byte for byte where no map has several entries (upb writes a map in its own hash order, which varies).
    if (not resource.outputs or len(resource.outputs) == 1) and not resource.custom_info:
        assert replies.get_task_v1(resource) == expected.SerializeToString()
    sync = agent_pb2.ExecuteTaskSyncResponse.FromString(replies.execute_task_sync(resource))
    assert sync.header.resource == expected.resource
    assert agent_pb2.Resource.FromString(replies.resource_v1(resource)) == expected.resource


def _v2_sorted(reply: Any) -> Any:
    """Flyte 2 outputs are a repeated field: the proto path has upb's map order, the wire path the dict's."""
    if not reply.resource.HasField("outputs"):
        return reply
    named = sorted(reply.resource.outputs.literals, key=lambda n: n.name)
    del reply.resource.outputs.literals[:]
    reply.resource.outputs.literals.extend(named)
    return reply


@pytest.mark.parametrize("resource", RESOURCES, ids=IDS)
def test_flyte2_replies_are_the_proto_paths_messages(resource: Resource) -> None:
    expected = connector_pb2.GetTaskResponse(resource=resource_to_v2(resource))
    got = connector_pb2.GetTaskResponse.FromString(replies.get_task_v2(resource))
    assert got.resource.HasField("outputs") == (resource.outputs is not None)
    assert _v2_sorted(got) == _v2_sorted(expected)


def test_flyte2_outputs_keep_the_connectors_order() -> None:
    resource = Resource(phase=Phase.SUCCEEDED, outputs={"z": 1, "a": "x", "m": 0.5})
    got = connector_pb2.GetTaskResponse.FromString(replies.get_task_v2(resource))
    assert [n.name for n in got.resource.outputs.literals] == ["z", "a", "m"]


def test_flyte2_log_links_of_either_protocol() -> None:
    links = [execution_pb2.TaskLog(uri="u1", name="v1"), execution_v2.TaskLog(uri="u2", name="v2")]
    got = connector_pb2.GetTaskResponse.FromString(replies.get_task_v2(Resource(phase=Phase.RUNNING, log_links=links)))
    assert [(link.uri, link.name) for link in got.resource.log_links] == [("u1", "v1"), ("u2", "v2")]


def test_outputs_given_as_a_literal_map_proto() -> None:
    lm = to_literal_map({"a": 1, "b": [1.0, 2.0]})
    got = agent_pb2.GetTaskResponse.FromString(replies.get_task_v1(Resource(phase=Phase.SUCCEEDED, outputs=lm)))
    assert got.resource.outputs == lm


@pytest.mark.parametrize(
    ("resource", "error"),
    [
        (Resource(phase=Phase.RUNNING, message=7), "Resource.message must be a str, got int"),  # type: ignore[arg-type]
        (Resource(phase=Phase.RUNNING, custom_info={"x": object()}), "must be JSON-serialisable"),
        (Resource(phase=Phase.RUNNING, log_links=["not a link"]), "'str' object has no attribute"),
    ],
)
def test_unsendable_resources_raise(resource: Resource, error: str) -> None:
    with pytest.raises((TypeError, AttributeError), match=error):
        replies.get_task_v1(resource)


@pytest.mark.parametrize("meta", [b"", b"x", b"{}" * 100, bytes(range(256)) * 40])
def test_create_task_reply(meta: bytes) -> None:
    assert replies.create_task(meta) == agent_pb2.CreateTaskResponse(resource_meta=meta).SerializeToString()
    assert replies.create_task(meta) == connector_pb2.CreateTaskResponse(resource_meta=meta).SerializeToString()
