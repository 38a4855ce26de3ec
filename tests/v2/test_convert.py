"""v2_convert: wire compatibility facts and the pure Flyte 2 <-> SDK translations."""

from __future__ import annotations

import pytest
from flyteidl.core import execution_pb2 as execution_v1
from flyteidl.core import literals_pb2 as literals_v1
from flyteidl.core import tasks_pb2 as tasks_v1
from flyteidl2.connector import connector_pb2
from flyteidl2.core import execution_pb2 as execution_v2
from flyteidl2.core import interface_pb2 as interface_v2
from flyteidl2.core import literals_pb2 as literals_v2
from flyteidl2.core import security_pb2
from flyteidl2.core import tasks_pb2 as tasks_v2
from flyteidl2.core import types_pb2 as types_v2
from flyteidl2.task import common_pb2
from google.protobuf import struct_pb2
from google.protobuf.descriptor import FieldDescriptor

from flyteconnect.connector import Phase, Resource, TaskCategory
from flyteconnect.errors import InvalidRequest
from flyteconnect.literals import FlyteFile, to_literal_map
from flyteconnect.models import LiteralMap
from flyteconnect.server import v2_convert as cv


def _int(v: int) -> literals_v2.Literal:
    return literals_v2.Literal(scalar=literals_v2.Scalar(primitive=literals_v2.Primitive(integer=v)))


def _str(v: str) -> literals_v2.Literal:
    return literals_v2.Literal(scalar=literals_v2.Scalar(primitive=literals_v2.Primitive(string_value=v)))


def _var(simple: int) -> interface_v2.Variable:
    return interface_v2.Variable(type=types_v2.LiteralType(simple=simple))  # type: ignore[arg-type]


def v2_template() -> tasks_v2.TaskTemplate:
    custom = struct_pb2.Struct()
    custom.update({"query": "select 1", "n": 3})
    return tasks_v2.TaskTemplate(
        id={"project": "p", "domain": "d", "name": "t", "version": "v1"},
        type="echo",
        task_type_version=2,
        custom=custom,
        config={"k": "v"},
        interface=interface_v2.TypedInterface(
            inputs=interface_v2.VariableMap(
                variables=[
                    interface_v2.VariableEntry(key="x", value=_var(types_v2.INTEGER)),
                    interface_v2.VariableEntry(key="s", value=_var(types_v2.STRING)),
                ]
            )
        ),
        container={"image": "img", "args": ["a"]},
        worker_kind=1,  # type: ignore[arg-type]  # Flyte 2 only
    )


def _shared_fields_match(d1: object, d2: object, seen: set[tuple[str, str]]) -> list[str]:
    """Field numbers present in both messages have the same name, type and cardinality (recursively)."""
    problems: list[str] = []
    key = (d1.full_name, d2.full_name)  # type: ignore[attr-defined]
    if key in seen:
        return problems
    seen.add(key)
    f2 = {f.number: f for f in d2.fields}  # type: ignore[attr-defined]
    for f in d1.fields:  # type: ignore[attr-defined]
        g = f2.get(f.number)
        if g is None:
            continue
        if f.type != g.type or f.is_repeated != g.is_repeated:
            problems.append(f"{d1.full_name}.{f.name}")  # type: ignore[attr-defined]
        if f.type == FieldDescriptor.TYPE_MESSAGE:
            problems += _shared_fields_match(f.message_type, g.message_type, seen)
    return problems


def test_task_template_is_wire_compatible_on_shared_fields() -> None:
    assert _shared_fields_match(tasks_v1.TaskTemplate.DESCRIPTOR, tasks_v2.TaskTemplate.DESCRIPTOR, set()) == []


def test_outputs_encode_like_a_literal_map() -> None:
    outputs = common_pb2.Outputs(literals=[common_pb2.NamedLiteral(name="a", value=_int(7))])
    lm = literals_v1.LiteralMap.FromString(outputs.SerializeToString())
    assert lm.literals["a"].scalar.primitive.integer == 7
    back = common_pb2.Outputs.FromString(lm.SerializeToString())
    assert back == outputs


def test_template_view_reads_shared_fields_and_keeps_flyte2_ones() -> None:
    pb = v2_template()
    view = cv.template_view(pb)
    assert (view.type, view.task_type_version, view.id.name) == ("echo", 2, "t")
    assert view.custom == {"query": "select 1", "n": 3.0}
    assert view.config == {"k": "v"}
    assert view.container.image == "img"
    assert sorted(view.interface.inputs) == ["s", "x"]
    # The Flyte 2 only field survives the round trip as an unknown field.
    again = tasks_v2.TaskTemplate.FromString(view.to_flyte_idl().SerializeToString())
    assert again.worker_kind == 1
    assert cv.template_to_v2(view) is pb  # the original is kept, no re-parse


def test_template_to_v2_from_a_flyte1_proto() -> None:
    v1 = tasks_v1.TaskTemplate(type="echo", task_type_version=1, config={"a": "b"})
    v2 = cv.template_to_v2(v1)
    assert isinstance(v2, tasks_v2.TaskTemplate)
    assert (v2.type, v2.task_type_version, dict(v2.config)) == ("echo", 1, {"a": "b"})


def test_inputs_view_and_native_inputs() -> None:
    inputs = common_pb2.Inputs(
        literals=[common_pb2.NamedLiteral(name="x", value=_int(5)), common_pb2.NamedLiteral(name="s", value=_str("hi"))]
    )
    view = cv.inputs_view(inputs)
    assert isinstance(view, LiteralMap)
    assert view.literals["x"].scalar.primitive.integer == 5
    assert cv.native_inputs(view, cv.template_view(v2_template())) == {"x": 5, "s": "hi"}


def test_empty_inputs_are_a_truthy_empty_map() -> None:
    view = cv.inputs_view(common_pb2.Inputs())
    assert view and dict(view.literals) == {}


def test_native_inputs_are_typed_by_the_declared_interface() -> None:
    list_of_float = interface_v2.Variable(
        type=types_v2.LiteralType(collection_type=types_v2.LiteralType(simple=types_v2.FLOAT))
    )
    blob = interface_v2.Variable(type=types_v2.LiteralType(blob=types_v2.BlobType()))
    template = v2_template()
    template.interface.inputs.variables.extend(
        [interface_v2.VariableEntry(key="b", value=list_of_float), interface_v2.VariableEntry(key="c", value=blob)]
    )
    values = {"x": 5, "s": "hi", "b": [1.0, 2.5], "c": FlyteFile("s3://bucket/key.csv")}
    view = LiteralMap.from_flyte_idl(to_literal_map(values))
    native = cv.native_inputs(view, cv.template_view(template))
    assert native["x"] == 5 and native["s"] == "hi" and native["b"] == [1.0, 2.5]
    assert isinstance(native["c"], FlyteFile) and str(native["c"].path) == "s3://bucket/key.csv"


def test_connection_kwargs_configs_win_and_secrets_separate() -> None:
    conn = security_pb2.Connection(secrets={"token": "s3cr3t", "dup": "secret"}, configs={"region": "eu", "dup": "cfg"})
    assert cv.connection_kwargs(conn) == {"token": "s3cr3t", "region": "eu", "dup": "cfg"}
    assert cv.connection_secrets(conn) == {"token": "s3cr3t", "dup": "secret"}


def test_resource_to_v2_with_outputs_links_and_custom_info() -> None:
    r = Resource(
        phase=Phase.SUCCEEDED,
        message="done",
        log_links=[execution_v1.TaskLog(name="v1", uri="u1"), execution_v2.TaskLog(name="v2", uri="u2", icon_uri="i")],
        outputs={"n": 3, "s": "x", "f": 1.5, "b": True},
        custom_info={"k": 1},
    )
    pb = cv.resource_to_v2(r)
    assert pb.phase == Phase.SUCCEEDED and pb.message == "done"
    assert [(link.name, link.uri) for link in pb.log_links] == [("v1", "u1"), ("v2", "u2")]
    assert pb.log_links[1].icon_uri == "i"
    got = {n.name: n.value.scalar.primitive for n in pb.outputs.literals}
    assert (got["n"].integer, got["s"].string_value, got["f"].float_value, got["b"].boolean) == (3, "x", 1.5, True)
    assert pb.custom_info["k"] == 1.0
    back = cv.resource_from_v2(pb)
    assert back.outputs is not None and back.outputs.literals["n"].scalar.primitive.integer == 3


def test_resource_without_outputs_has_no_outputs_field() -> None:
    pb = cv.resource_to_v2(Resource(phase=Phase.RUNNING))
    assert not pb.HasField("outputs") and not pb.HasField("custom_info")


def test_bad_log_link_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="TaskLog"):
        cv.log_links_to_v2(["http://x"])


def test_metadata_view_round_trip() -> None:
    pb = connector_pb2.TaskExecutionMetadata(namespace="ns", labels={"a": "b"}, max_attempts=3)
    view = cv.metadata_view(pb)
    assert (view.namespace, view.labels, view.max_attempts) == ("ns", {"a": "b"}, 3)
    assert cv.metadata_to_v2(view) is pb
    assert cv.metadata_to_v2(view.to_flyte_idl()).namespace == "ns"


def test_connector_to_v2() -> None:
    pb = cv.connector_to_v2("C", [TaskCategory("a"), TaskCategory("b", 2)])
    assert pb.name == "C"
    assert [(c.name, c.version) for c in pb.supported_task_categories] == [("a", 0), ("b", 2)]


def test_envelope_round_trip_and_errors() -> None:
    resource = connector_pb2.Resource(phase=int(Phase.SUCCEEDED), message="ok")  # type: ignore[arg-type]
    data = cv.encode_envelope(resource)
    assert cv.is_envelope(data) and data[0] == 0
    assert cv.decode_envelope(data) == resource
    with pytest.raises(InvalidRequest, match="not a flyteconnect sync envelope"):
        cv.decode_envelope(b'{"job_id": "1"}')
    with pytest.raises(InvalidRequest, match="version 9"):
        cv.decode_envelope(cv.ENVELOPE_MAGIC + b"\x09")
    with pytest.raises(InvalidRequest, match="corrupted"):
        cv.decode_envelope(data + b"\xff\xff")


def test_envelope_size_limit() -> None:
    resource = connector_pb2.Resource(phase=int(Phase.SUCCEEDED), message="x" * 2000)  # type: ignore[arg-type]
    with pytest.raises(cv.EnvelopeTooLarge) as info:
        cv.encode_envelope(resource, limit=1000)
    assert info.value.size > 2000 and info.value.limit == 1000
