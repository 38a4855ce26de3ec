"""The behaviours flytekit's framework tests (tests/flytekit/unit/extend/test_connector.py, 1.16.31) assert, checked on
flyteconnect: written here from those facts, with flyteconnect's names (what `flyteconnect migrate` maps to)."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from typing import Any, Optional
from unittest.mock import MagicMock

import grpc
import pytest
from flyteidl.admin import agent_pb2
from flyteidl.core import execution_pb2, identifier_pb2, literals_pb2, metrics_pb2, security_pb2

from flyteconnect import (
    AsyncConnectorBase,
    AsyncConnectorExecutorMixin,
    ConnectorRegistry,
    ConnectorTask,
    LiteralMap,
    Resource,
    ResourceMeta,
    SyncConnectorBase,
    SyncConnectorExecutorMixin,
    TaskExecutionMetadata,
    TaskTemplate,
)
from flyteconnect.compat.models import (
    Identifier,
    NodeExecutionIdentifier,
    TaskExecutionIdentifier,
    WorkflowExecutionIdentifier,
)
from flyteconnect.compat.runtime import loop_manager
from flyteconnect.errors import ConnectorNotFound
from flyteconnect.server.direct import DirectCallFailed
from flyteconnect.server.flyteidl_v1 import AsyncConnectorService, ConnectorMetadataService, SyncConnectorService

SUCCEEDED = execution_pb2.TaskExecution.SUCCEEDED


@dataclasses.dataclass
class JobMeta(ResourceMeta):
    job_id: str
    output_path: Optional[str] = None
    task_name: Optional[str] = None


class PlainConnector(AsyncConnectorBase):
    name = "Plain Connector"

    def __init__(self) -> None:
        super().__init__(task_type_name="plain", metadata_type=JobMeta)

    def create(self, task_template: TaskTemplate, inputs: Optional[LiteralMap], **kwargs: Any) -> JobMeta:
        return JobMeta(job_id="j1")

    def get(self, resource_meta: JobMeta, **kwargs: Any) -> Resource:
        log = execution_pb2.TaskLog(name="console", uri="localhost:3000")
        return Resource(phase=SUCCEEDED, log_links=[log], custom_info={"custom": "info", "num": 1})

    def delete(self, resource_meta: JobMeta, **kwargs: Any) -> None:
        return None


class ForwardingConnector(AsyncConnectorBase):
    """Puts output_prefix and the task name from task_execution_metadata into its metadata: proves both arrive."""

    name = "Forwarding Connector"

    def __init__(self) -> None:
        super().__init__(task_type_name="forwarding", metadata_type=JobMeta)

    async def create(
        self,
        task_template: TaskTemplate,
        inputs: Optional[LiteralMap] = None,
        output_prefix: Optional[str] = None,
        task_execution_metadata: Optional[TaskExecutionMetadata] = None,
        **kwargs: Any,
    ) -> JobMeta:
        assert task_execution_metadata is not None
        name = task_execution_metadata.task_execution_id.task_id.name
        return JobMeta(job_id="j1", output_path=f"{output_prefix}/j1", task_name=name)

    async def get(self, resource_meta: JobMeta, **kwargs: Any) -> Resource:
        return Resource(phase=SUCCEEDED)

    async def delete(self, resource_meta: JobMeta, **kwargs: Any) -> None:
        return None

    async def get_metrics(self, resource_meta: JobMeta, **kwargs: Any) -> agent_pb2.GetTaskMetricsResponse:
        result = metrics_pb2.ExecutionMetricResult(metric="EXECUTION_METRIC_LIMIT_MEMORY_BYTES")
        return agent_pb2.GetTaskMetricsResponse(results=[result])

    async def get_logs(self, resource_meta: JobMeta, **kwargs: Any) -> agent_pb2.GetTaskLogsResponse:
        return agent_pb2.GetTaskLogsResponse(body=agent_pb2.GetTaskLogsResponseBody(results=["foo", "bar"]))


class AddOne(SyncConnectorBase):
    name = "Add One"

    def __init__(self, task_type: str = "add_one") -> None:
        super().__init__(task_type_name=task_type)

    def do(self, task_template: TaskTemplate, inputs: Optional[LiteralMap] = None, **kwargs: Any) -> Resource:
        assert inputs is not None
        return Resource(phase=SUCCEEDED, outputs={"o0": inputs.literals["a"].scalar.primitive.integer})


@pytest.fixture(autouse=True)
def default_registry(monkeypatch: pytest.MonkeyPatch) -> ConnectorRegistry:
    """Registration goes to the process default registry, as in flytekit: a fresh one per test."""
    fresh = ConnectorRegistry()
    monkeypatch.setattr(ConnectorRegistry, "_default", fresh)
    return fresh


def _metadata() -> TaskExecutionMetadata:
    # flytekit's keywords and its positional identifier models.
    return TaskExecutionMetadata(
        task_execution_id=TaskExecutionIdentifier(
            task_id=Identifier(identifier_pb2.TASK, "project", "domain", "name", "version"),
            node_execution_id=NodeExecutionIdentifier("node_id", WorkflowExecutionIdentifier("project", "domain", "n")),
            retry_attempt=1,
        ),
        namespace="namespace",
        labels={"label_key": "label_val"},
        annotations={"annotation_key": "annotation_val"},
        k8s_service_account="k8s service account",
        environment_variables={"env_var_key": "env_var_val"},
        identity=security_pb2.Identity(execution_identity="task executor"),
    )


def _inputs() -> literals_pb2.LiteralMap:
    return LiteralMap(
        {"a": literals_pb2.Literal(scalar=literals_pb2.Scalar(primitive=literals_pb2.Primitive(integer=1)))}
    ).to_flyte_idl()


def test_task_execution_metadata_is_constructible_with_flytekits_keywords() -> None:
    meta = _metadata()
    assert meta.task_execution_id.task_id.name == "name" and meta.task_execution_id.retry_attempt == 1
    assert meta.namespace == "namespace" and meta.labels == {"label_key": "label_val"}
    assert meta.environment_variables == {"env_var_key": "env_var_val"}
    assert meta.identity.execution_identity == "task executor"
    with pytest.raises(TypeError, match="no_such_field"):
        TaskExecutionMetadata(no_such_field=1)


@pytest.mark.parametrize("connector", [PlainConnector(), ForwardingConnector()], ids=["def", "async def"])
async def test_the_async_service_called_directly_without_a_dispatcher(connector: AsyncConnectorBase) -> None:
    ConnectorRegistry.register(connector, override=True)
    service = AsyncConnectorService()
    ctx = MagicMock(spec=grpc.ServicerContext)
    category = agent_pb2.TaskCategory(name=connector.task_category.name, version=0)
    template = ConnectorTask("t", category.name).task_template()
    request = agent_pb2.CreateTaskRequest(
        inputs=_inputs(), template=template, output_prefix="/tmp", task_execution_metadata=_metadata().to_flyte_idl()
    )
    created = await service.CreateTask(request, ctx)
    expected = JobMeta("j1", "/tmp/j1", "name") if isinstance(connector, ForwardingConnector) else JobMeta("j1")
    assert created.resource_meta == expected.encode()
    meta = created.resource_meta
    got = await service.GetTask(agent_pb2.GetTaskRequest(task_category=category, resource_meta=meta), ctx)
    assert got.resource.phase == SUCCEEDED
    deleted = await service.DeleteTask(agent_pb2.DeleteTaskRequest(task_category=category, resource_meta=meta), ctx)
    assert deleted == agent_pb2.DeleteTaskResponse()
    if isinstance(connector, ForwardingConnector):
        req = agent_pb2.GetTaskMetricsRequest(task_category=category, resource_meta=meta)
        assert (await service.GetTaskMetrics(req, ctx)).results[0].metric == "EXECUTION_METRIC_LIMIT_MEMORY_BYTES"
        logs = await service.GetTaskLogs(agent_pb2.GetTaskLogsRequest(task_category=category, resource_meta=meta), ctx)
        assert list(logs.body.results) == ["foo", "bar"]
    agent = ConnectorRegistry.get_connector_metadata(connector.name)
    assert agent.supported_task_types[0] == agent.supported_task_categories[0].name == category.name
    with pytest.raises(ConnectorNotFound):
        ConnectorRegistry.get_connector_metadata("non-exist-name")


async def test_a_direct_call_that_fails_raises_with_the_status_the_server_sends() -> None:
    ctx = MagicMock(spec=grpc.ServicerContext)
    request = agent_pb2.GetTaskRequest(task_category=agent_pb2.TaskCategory(name="missing"), resource_meta=b"{}")
    with pytest.raises(DirectCallFailed) as info:
        await AsyncConnectorService().GetTask(request, ctx)
    assert info.value.code == grpc.StatusCode.NOT_FOUND
    ctx.set_code.assert_called_with(grpc.StatusCode.NOT_FOUND)


def test_registering_twice_needs_override_and_unknown_types_are_not_found() -> None:
    ConnectorRegistry.register(PlainConnector(), override=True)
    assert ConnectorRegistry.get_connector("plain").name == "Plain Connector"
    with pytest.raises(ValueError, match="Duplicate connector for task type: plain_v0"):
        ConnectorRegistry.register(PlainConnector())
    with pytest.raises(ConnectorNotFound):
        ConnectorRegistry.get_connector("non-exist-type")
    assert len(ConnectorRegistry.list_connectors()) >= 1


async def test_the_metadata_service_called_directly() -> None:
    ConnectorRegistry.register(PlainConnector(), override=True)
    ctx = MagicMock(spec=grpc.ServicerContext)
    service = ConnectorMetadataService()
    assert isinstance(await service.ListAgents(agent_pb2.ListAgentsRequest(), ctx), agent_pb2.ListAgentsResponse)
    agent = (await service.GetAgent(agent_pb2.GetAgentRequest(name="Plain Connector"), ctx)).agent
    assert agent.name == "Plain Connector"
    assert agent.supported_task_types[0] == agent.supported_task_categories[0].name == "plain"


async def _stream(task_type: str) -> AsyncIterator[agent_pb2.ExecuteTaskSyncRequest]:
    header = agent_pb2.CreateRequestHeader(template=ConnectorTask("t", task_type).task_template(), output_prefix="/tmp")
    yield agent_pb2.ExecuteTaskSyncRequest(header=header)
    yield agent_pb2.ExecuteTaskSyncRequest(inputs=_inputs())


async def test_the_sync_service_called_directly() -> None:
    ConnectorRegistry.register(AddOne(), override=True)
    reply = (
        await SyncConnectorService()
        .ExecuteTaskSync(_stream("add_one"), MagicMock(spec=grpc.ServicerContext))
        .__anext__()
    )
    assert reply.header.resource.phase == SUCCEEDED
    assert reply.header.resource.outputs.literals["o0"].scalar.primitive.integer == 1


def test_resource_to_flyte_idl_through_flytekits_loop_manager() -> None:
    empty = loop_manager.run_sync(Resource(phase=SUCCEEDED).to_flyte_idl)
    assert empty.phase == SUCCEEDED and not empty.log_links and not empty.message
    assert not empty.outputs.literals and not empty.custom_info
    full = Resource(
        phase=SUCCEEDED,
        log_links=[execution_pb2.TaskLog(name="console", uri="localhost:3000")],
        message="foo",
        outputs={"o0": 1},
        custom_info={"custom": "info", "num": 1},
    )
    pb = loop_manager.run_sync(full.to_flyte_idl)
    assert pb.outputs.literals["o0"].scalar.primitive.integer == 1 and pb.message == "foo"
    back = Resource.from_flyte_idl(pb)
    assert back.phase == full.phase and list(back.log_links or []) == full.log_links and back.message == "foo"
    assert back.outputs.literals["o0"].scalar.primitive.integer == 1  # round-tripping gives a LiteralMap
    assert back.custom_info == {"custom": "info", "num": 1}


class FlytekitStyleTask:
    """The attributes flytekit's PythonTask has that local execution reads (no flyteconnect base class)."""

    def __init__(self, name: str, task_type: str, inputs: dict[str, Any], outputs: dict[str, Any]) -> None:
        self.name = name
        self._task_type = task_type
        self.python_interface = type("Interface", (), {"inputs": inputs, "outputs": outputs})()

    @property
    def task_type(self) -> str:
        return self._task_type

    def get_custom(self, settings: Any) -> dict[str, Any]:
        return {}


@dataclasses.dataclass
class Foo:
    val: str


class Foos(SyncConnectorBase):
    def __init__(self) -> None:
        super().__init__(task_type_name="foo")

    def do(self, task_template: TaskTemplate, inputs: Optional[LiteralMap] = None, **kwargs: Any) -> Resource:
        return Resource(phase=SUCCEEDED, outputs={"foos": [Foo(val="a"), Foo(val="b")], "has_foos": True})


def test_executor_mixins_run_flytekit_style_task_classes() -> None:
    ConnectorRegistry.register(AddOne("async_openai"), override=True)
    ConnectorRegistry.register(Foos(), override=True)
    ConnectorRegistry.register(PlainConnector(), override=True)

    class OpenAITask(SyncConnectorExecutorMixin, FlytekitStyleTask):
        pass

    assert OpenAITask("openai task", "async_openai", {"a": int}, {"o0": int})(a=1) == 1

    class FooTask(SyncConnectorExecutorMixin, FlytekitStyleTask):
        pass

    res = FooTask("foo_task", "foo", {}, {"has_foos": bool, "foos": Optional[list[Foo]]})()
    assert res.has_foos and res.foos[1].val == "b"

    class PlainTask(AsyncConnectorExecutorMixin, FlytekitStyleTask):
        pass

    t = PlainTask("p", "plain", {}, {})
    t.execute()
    t._task_type = "non-exist-type"
    with pytest.raises(ConnectorNotFound, match="Cannot find connector for task category: non-exist-type"):
        t.execute()
