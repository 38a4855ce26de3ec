"""ConnectorTask declares a task and produces the TaskTemplate Propeller would receive."""

from __future__ import annotations

import datetime

import pytest
from flyteidl.core import identifier_pb2, security_pb2, tasks_pb2, types_pb2
from google.protobuf import json_format

import flyteconnect
from flyteconnect.local import ConnectorTask


def test_connector_task_is_importable_from_the_package() -> None:
    assert flyteconnect.ConnectorTask is ConnectorTask
    assert flyteconnect.AsyncAgentExecutorMixin is flyteconnect.AsyncConnectorExecutorMixin


def test_template_has_id_type_interface_custom_and_metadata() -> None:
    task = ConnectorTask(
        name="q",
        task_type="my_type",
        task_type_version=2,
        inputs={"x": int, "name": str},
        outputs={"y": float},
        custom={"region": "eu", "size": 3, "nested": {"a": [1, 2]}},
        config={"k": "v"},
        timeout=datetime.timedelta(minutes=5, milliseconds=250),
        retries=3,
        interruptible=True,
    )
    t = task.to_task_template()
    assert isinstance(t, tasks_pb2.TaskTemplate)
    assert t.id.resource_type == identifier_pb2.TASK
    assert (t.id.name, t.id.project, t.id.domain) == ("q", "flyteconnect", "development")
    assert (t.type, t.task_type_version) == ("my_type", 2)
    assert sorted(t.interface.inputs.variables) == ["name", "x"]  # a proto map: no order
    assert t.interface.inputs.variables["x"].type.simple == types_pb2.INTEGER
    assert t.interface.inputs.variables["x"].description == "x"
    assert t.interface.outputs.variables["y"].type.simple == types_pb2.FLOAT
    # numbers become doubles in a Struct, as flytekit's custom does
    assert json_format.MessageToDict(t.custom) == {"region": "eu", "size": 3.0, "nested": {"a": [1.0, 2.0]}}
    assert dict(t.config) == {"k": "v"}
    assert (t.metadata.timeout.seconds, t.metadata.timeout.nanos) == (300, 250_000_000)
    assert t.metadata.retries.retries == 3
    assert t.metadata.interruptible is True
    assert t.metadata.runtime.flavor == "flyteconnect"
    assert not t.HasField("container") and not t.HasField("sql") and not t.HasField("security_context")


def test_template_copies_are_independent() -> None:
    task = ConnectorTask("q", "t")
    a = task.to_task_template()
    a.type = "changed"
    assert task.to_task_template().type == "t"


def test_secrets_container_and_sql() -> None:
    task = ConnectorTask(
        "q",
        "t",
        secret_requests=["group/key", "lonely", security_pb2.Secret(group="g", key="k", env_var="E")],
        container={"image": "img:1", "args": ["a", "b"], "env": {"A": 1}},
    )
    t = task.to_task_template()
    secrets = t.security_context.secrets
    assert [(s.group, s.key) for s in secrets] == [("group", "key"), ("", "lonely"), ("g", "k")]
    assert secrets[2].env_var == "E"
    assert t.container.image == "img:1" and list(t.container.args) == ["a", "b"]
    assert [(kv.key, kv.value) for kv in t.container.env] == [("A", "1")]
    sql = ConnectorTask("q", "t", sql="select 1").to_task_template()
    assert sql.sql.statement == "select 1" and sql.sql.dialect == tasks_pb2.Sql.ANSI
    assert sql.WhichOneof("target") == "sql"


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"name": "", "task_type": "t"}, "non-empty name"),
        ({"name": "q", "task_type": ""}, "non-empty task_type"),
        ({"name": "q", "task_type": "t", "retries": -1}, "retries"),
        ({"name": "q", "task_type": "t", "timeout": 0}, "timeout must be positive"),
        ({"name": "q", "task_type": "t", "custom": {"x": object()}}, "JSON-serialisable"),
        ({"name": "q", "task_type": "t", "secret_requests": [3]}, "secret request"),
        ({"name": "q", "task_type": "t", "sql": 5}, "sql must be"),
        ({"name": "q", "task_type": "t", "sql": "s", "container": {"image": "i"}}, "exclusive"),
    ],
)
def test_bad_declarations_fail_at_definition(kwargs: dict, match: str) -> None:
    with pytest.raises((ValueError, TypeError), match=match):
        ConnectorTask(**kwargs)
