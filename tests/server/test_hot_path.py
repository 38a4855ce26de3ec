"""The one Resource encoder (``flyteconnect.encoding``) gives the protos built the plain way, part by part."""

from __future__ import annotations

from typing import Any

import pytest
from flyteidl.admin import agent_pb2
from flyteidl.core import execution_pb2, literals_pb2
from flyteidl2.connector import connector_pb2
from flyteidl2.task import common_pb2

from flyteconnect import Phase, Resource
from flyteconnect.errors import LiteralError
from flyteconnect.literals import to_literal, to_literal_map
from flyteconnect.models import LiteralMap
from flyteconnect.server import v2_convert as cv

OUTPUTS: list[Any] = [
    None,
    {},
    {"i": 7, "f": 0.5, "s": "x", "b": True, "big": -(2**63), "l": [1, 2], "d": {"k": "v"}, "n": None},
    literals_pb2.LiteralMap(literals={"a": to_literal(3)}),
    LiteralMap.from_flyte_idl(literals_pb2.LiteralMap(literals={"a": to_literal("s")})),
    common_pb2.Outputs.FromString(literals_pb2.LiteralMap(literals={"o": to_literal(1.5)}).SerializeToString()),
]


def reference_v1(r: Resource) -> agent_pb2.Resource:
    """The Flyte 1 Resource built the plain way: every part made on its own, then copied in."""
    pb = agent_pb2.Resource(
        phase=int(r.phase), message=r.message or "", log_links=r.log_links or [], state=agent_pb2.RUNNING
    )
    if r.phase == Phase.SUCCEEDED:
        pb.state = agent_pb2.SUCCEEDED
    if r.outputs is not None:
        lm = r.outputs
        if isinstance(lm, dict):
            lm = literals_pb2.LiteralMap(literals={k: to_literal(v) for k, v in lm.items()})
        elif isinstance(lm, LiteralMap):
            lm = lm.to_flyte_idl()
        elif isinstance(lm, common_pb2.Outputs):  # Flyte 2's message has a LiteralMap's bytes
            lm = literals_pb2.LiteralMap.FromString(lm.SerializeToString())
        pb.outputs.CopyFrom(lm)
    if r.custom_info:
        pb.custom_info.update(r.custom_info)
    return pb


def resources() -> list[Resource]:
    link = execution_pb2.TaskLog(uri="http://x", name="log")
    out = [Resource(phase=Phase.SUCCEEDED, outputs=o, message="done") for o in OUTPUTS]
    out.append(Resource(phase=Phase.RUNNING, log_links=[link], custom_info={"n": 1, "s": "t"}))
    out.append(Resource(phase=Phase.RUNNING))
    return out


@pytest.mark.parametrize("resource", resources(), ids=lambda r: type(r.outputs).__name__)
def test_v1_proto_is_byte_identical_to_the_plain_build(resource: Resource) -> None:
    reply = agent_pb2.GetTaskResponse(resource=resource.to_flyte_idl())
    expected = agent_pb2.GetTaskResponse(resource=reference_v1(resource))
    assert reply.SerializeToString(deterministic=True) == expected.SerializeToString(deterministic=True)
    assert reply.resource.HasField("outputs") == (resource.outputs is not None)
    assert resource.to_flyte_idl() == expected.resource


@pytest.mark.parametrize("resource", resources(), ids=lambda r: type(r.outputs).__name__)
def test_v2_proto_has_the_same_literals(resource: Resource) -> None:
    reply = connector_pb2.GetTaskResponse(resource=cv.resource_to_v2(resource))
    assert reply.resource.HasField("outputs") == (resource.outputs is not None)
    if resource.outputs is not None:
        # A proto map's wire order is its hash order: compare the named literals as a mapping.
        expected = {k: v.SerializeToString() for k, v in reference_v1(resource).outputs.literals.items()}
        got = {lit.name: lit.value.SerializeToString() for lit in reply.resource.outputs.literals}
        assert got == expected


def test_to_literal_map_into_fills_the_given_map_and_keeps_int64_errors() -> None:
    target = agent_pb2.Resource()
    assert to_literal_map({"x": 1}, into=target.outputs) is target.outputs
    assert target.outputs.literals["x"].scalar.primitive.integer == 1
    with pytest.raises(LiteralError, match=r"output 'big'.*int64"):
        Resource(phase=Phase.SUCCEEDED, outputs={"big": 2**63}).to_flyte_idl()
