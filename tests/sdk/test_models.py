"""The read-only views handed to connectors: flytekit's attribute names, built lazily from the protos."""

from __future__ import annotations

import pytest
from flyteidl.admin import agent_pb2
from flyteidl.core import identifier_pb2, interface_pb2, literals_pb2, tasks_pb2, types_pb2
from google.protobuf import struct_pb2

from flyteconnect import LiteralMap, TaskExecutionMetadata, TaskTemplate
from flyteconnect.errors import InvalidRequest
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


def _rich_template() -> tasks_pb2.TaskTemplate:
    pb = _template()
    pb.metadata.retries.retries = 3
    pb.container.image = "img"
    pb.container.args.extend(["--out", "{{.outputPrefix}}"])
    pb.security_context.run_as.k8s_service_account = "sa"
    return pb


def test_a_view_from_bytes_reads_like_a_view_from_the_proto() -> None:
    pb = _rich_template()
    from_bytes, from_pb = TaskTemplate.from_bytes(pb.SerializeToString()), TaskTemplate.from_flyte_idl(pb)
    for name in ("type", "task_type_version", "id", "metadata", "custom", "config", "container", "sql", "k8s_pod",
                 "security_context", "extended_resources"):  # fmt: skip
        assert getattr(from_bytes, name) == getattr(from_pb, name), name
    assert from_bytes.interface.inputs == from_pb.interface.inputs
    assert from_bytes.to_flyte_idl() == pb
    assert repr(from_bytes) == repr(from_pb)


def test_views_of_the_same_template_bytes_share_nothing_mutable() -> None:
    raw = _rich_template().SerializeToString()
    first, second = TaskTemplate.from_bytes(raw), TaskTemplate.from_bytes(raw)  # the second from the memo
    first.custom["nested"]["a"].append(3.0)
    first.config["k"] = "changed"
    first.container.args.append("--more")
    assert second.custom == {"query": "select 1", "retries": 3.0, "nested": {"a": [1.0, 2.0]}}
    assert second.config == {"k": "v"}
    assert list(second.container.args) == ["--out", "{{.outputPrefix}}"]
    assert second.to_flyte_idl() is not first.to_flyte_idl()


def test_a_template_from_the_memo_is_parsed_only_when_a_proto_is_read() -> None:
    raw = _rich_template().SerializeToString()
    TaskTemplate.from_bytes(raw)
    view = TaskTemplate.from_bytes(raw)
    assert (view.type, view.custom["query"], view.config) == ("my_type", "select 1", {"k": "v"})
    assert _unparsed(view)
    assert view.id.name == "t"
    assert not _unparsed(view)


def _unparsed(view: object) -> bool:
    try:
        object.__getattribute__(view, "_pb")
    except AttributeError:
        return True
    return False


def test_the_template_memo_is_bounded(monkeypatch) -> None:
    from flyteconnect import models

    monkeypatch.setattr(models, "_TEMPLATES", {})
    monkeypatch.setattr(models, "_TEMPLATE_ENTRIES", 3)
    monkeypatch.setattr(models, "_TEMPLATE_MAX_BYTES", 200)
    for i in range(10):
        view = TaskTemplate.from_bytes(tasks_pb2.TaskTemplate(type=f"t{i}").SerializeToString())
        assert view.type == f"t{i}"
    assert len(models._TEMPLATES) == 3
    big = tasks_pb2.TaskTemplate(type="big", config={"k": "x" * 300}).SerializeToString()
    assert TaskTemplate.from_bytes(big).config["k"] == "x" * 300
    assert big not in models._TEMPLATES


def test_a_custom_struct_json_cannot_show_still_raises_from_bytes() -> None:
    pb = tasks_pb2.TaskTemplate(type="t")
    pb.custom.update({"x": float("nan")})
    view = TaskTemplate.from_bytes(pb.SerializeToString())
    with pytest.raises(ValueError, match="NaN"):
        view.custom  # noqa: B018


def test_views_from_bytes_that_do_not_parse_raise_invalid_request_on_first_use() -> None:
    bad = b"\xff\xff\xff"
    with pytest.raises(InvalidRequest, match=r"malformed flyteidl.core.TaskTemplate in the request"):
        TaskTemplate.from_bytes(bad)  # the routing key needs the template at once
    inputs, meta = LiteralMap.from_bytes(bad), TaskExecutionMetadata.from_bytes(bad)  # the others on first use
    with pytest.raises(InvalidRequest, match=r"malformed flyteidl.core.LiteralMap in the request"):
        inputs.to_python()
    with pytest.raises(InvalidRequest, match=r"malformed flyteidl.admin.TaskExecutionMetadata in the request"):
        meta.namespace  # noqa: B018
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        inputs.nope  # type: ignore[attr-defined]  # noqa: B018


def test_literal_map_and_metadata_from_bytes() -> None:
    proto = literals_pb2.LiteralMap(literals={"a": to_literal(1), "b": to_literal("x")})
    view = LiteralMap.from_bytes(proto.SerializeToString())
    assert view.to_python() == {"a": 1, "b": "x"} and view.to_flyte_idl() == proto and view == proto
    assert LiteralMap.from_bytes(b"").to_python() == {}  # an absent field: an empty map
    meta = agent_pb2.TaskExecutionMetadata(namespace="ns", labels={"a": "b"}, max_attempts=3)
    view_meta = TaskExecutionMetadata.from_bytes(meta.SerializeToString())
    assert (view_meta.namespace, view_meta.labels, view_meta.max_attempts) == ("ns", {"a": "b"}, 3)


def test_cached_attributes_are_computed_once_per_view_and_documented() -> None:
    view = TaskTemplate.from_bytes(_rich_template().SerializeToString())
    assert view.config is view.config and view.interface is view.interface
    other = TaskTemplate.from_bytes(_rich_template().SerializeToString())
    assert other.config is not view.config  # per view, not per class
    assert TaskTemplate.custom.__doc__ and "custom Struct" in TaskTemplate.custom.__doc__


def test_a_connector_changing_its_template_proto_does_not_change_the_memo() -> None:
    pb = _rich_template()
    pb.custom.update({"fresh": "yes"})  # bytes no other test uses: this template is new to the memo
    raw = pb.SerializeToString()
    first = TaskTemplate.from_bytes(raw)
    first.to_flyte_idl().custom.update({"query": "changed in place"})  # before anyone read .custom
    assert first.custom["query"] == "select 1"  # custom is the request's, as sent
    assert TaskTemplate.from_bytes(raw).custom["query"] == "select 1"
