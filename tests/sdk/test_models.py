"""The read-only views handed to connectors: flytekit's attribute names, built lazily from the protos."""

from __future__ import annotations

from flyteidl.admin import agent_pb2
from flyteidl.core import identifier_pb2, interface_pb2, literals_pb2, tasks_pb2, types_pb2
from google.protobuf import struct_pb2

from flyteconnect import LiteralMap, TaskExecutionMetadata, TaskTemplate
from flyteconnect.literals import to_literal


def _template() -> tasks_pb2.TaskTemplate:
    custom = struct_pb2.Struct()
    custom.update({"query": "select 1", "retries": 3, "nested": {"a": [1, 2]}})
    int_type = types_pb2.LiteralType(simple=types_pb2.INTEGER)
    return tasks_pb2.TaskTemplate(
        id=identifier_pb2.Identifier(project="p", domain="d", name="t", version="v"),
        type="my_type",
        task_type_version=2,
        custom=custom,
        config={"k": "v"},
        interface=interface_pb2.TypedInterface(
            inputs=interface_pb2.VariableMap(variables={"x": interface_pb2.Variable(type=int_type)}),
            outputs=interface_pb2.VariableMap(variables={"y": interface_pb2.Variable(type=int_type)}),
        ),
        sql=tasks_pb2.Sql(statement="select 1", dialect=tasks_pb2.Sql.ANSI),
    )


def test_task_template_view_exposes_flytekit_attribute_names() -> None:
    view = TaskTemplate.from_flyte_idl(_template())
    assert (view.type, view.task_type_version) == ("my_type", 2)
    assert view.id.name == "t"
    assert view.custom == {"query": "select 1", "retries": 3.0, "nested": {"a": [1.0, 2.0]}}  # floats, as flytekit
    assert view.config == {"k": "v"}
    assert list(view.interface.inputs) == ["x"] and list(view.interface.outputs) == ["y"]
    assert view.sql is not None and view.sql.statement == "select 1"
    assert view.container is None and view.k8s_pod is None and view.security_context is None
    assert view.to_flyte_idl() == _template()


def test_task_template_view_is_lazy_and_caches() -> None:
    view = TaskTemplate.from_flyte_idl(_template())
    assert "custom" not in view.__dict__
    assert view.custom is view.custom


def test_empty_template_custom_is_an_empty_dict() -> None:
    assert TaskTemplate.from_flyte_idl(tasks_pb2.TaskTemplate(type="t")).custom == {}


def test_literal_map_view() -> None:
    proto = literals_pb2.LiteralMap(literals={"a": to_literal(1), "b": to_literal("x")})
    view = LiteralMap.from_flyte_idl(proto)
    assert view.to_flyte_idl() is proto  # wraps, no copy
    assert set(view.literals) == {"a", "b"}
    assert view.literals["a"].scalar.primitive.integer == 1
    assert view.to_python() == {"a": 1, "b": "x"}
    assert '"stringValue": "x"' in view.to_json()
    assert view == LiteralMap({"a": to_literal(1), "b": to_literal("x")})
    assert bool(LiteralMap()) is True  # always truthy, like flytekit's model


def test_task_execution_metadata_view_keeps_every_field() -> None:
    tid = identifier_pb2.TaskExecutionIdentifier(
        task_id=identifier_pb2.Identifier(name="task"),
        node_execution_id=identifier_pb2.NodeExecutionIdentifier(
            node_id="n0", execution_id=identifier_pb2.WorkflowExecutionIdentifier(project="p", domain="d", name="e")
        ),
        retry_attempt=1,
    )
    pb = agent_pb2.TaskExecutionMetadata(
        task_execution_id=tid,
        namespace="ns",
        labels={"l": "1"},
        annotations={"a": "2"},
        k8s_service_account="sa",
        environment_variables={"E": "3"},
        max_attempts=4,
        interruptible=True,
    )
    view = TaskExecutionMetadata.from_flyte_idl(pb)
    assert view.task_execution_id.task_id.name == "task"
    assert (view.namespace, view.k8s_service_account, view.max_attempts, view.interruptible) == ("ns", "sa", 4, True)
    assert (view.labels, view.annotations, view.environment_variables) == ({"l": "1"}, {"a": "2"}, {"E": "3"})
    key = view.idempotency_key()
    assert key == TaskExecutionMetadata.from_flyte_idl(pb).idempotency_key()
    pb.task_execution_id.retry_attempt = 2  # a new attempt is a new job
    assert TaskExecutionMetadata.from_flyte_idl(pb).idempotency_key() != key
