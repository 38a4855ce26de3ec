"""End to end through flyteidl2's generated stubs on a real loopback server (which also serves Flyte 1)."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
import pytest
from flyteidl.admin import agent_pb2
from flyteidl.core import literals_pb2 as literals_v1
from flyteidl.core import tasks_pb2 as tasks_v1
from flyteidl.service import agent_pb2_grpc
from flyteidl2.connector import connector_pb2, service_pb2_grpc
from flyteidl2.core import interface_pb2, literals_pb2, security_pb2, tasks_pb2, types_pb2
from flyteidl2.task import common_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc

from flyteconnect.connector import Phase
from flyteconnect.server import v2_convert as cv
from flyteconnect.server.app import ConnectorServer, ServerConfig
from flyteconnect.server.dispatch import DispatchConfig

from .conftest import SEEN, make_registry


def _int(v: int) -> literals_pb2.Literal:
    return literals_pb2.Literal(scalar=literals_pb2.Scalar(primitive=literals_pb2.Primitive(integer=v)))


def template(task_type: str, name: str = "t1") -> tasks_pb2.TaskTemplate:
    var = interface_pb2.Variable(type=types_pb2.LiteralType(simple=types_pb2.INTEGER))
    return tasks_pb2.TaskTemplate(
        id={"project": "p", "domain": "d", "name": name, "version": "1"},
        type=task_type,
        interface=interface_pb2.TypedInterface(
            inputs=interface_pb2.VariableMap(variables=[interface_pb2.VariableEntry(key="x", value=var)])
        ),
    )


def create_request(task_type: str, x: int = 3, name: str = "t1", **kw: Any) -> connector_pb2.CreateTaskRequest:
    return connector_pb2.CreateTaskRequest(
        template=template(task_type, name),
        inputs=common_pb2.Inputs(literals=[common_pb2.NamedLiteral(name="x", value=_int(x))]),
        output_prefix="s3://bucket/prefix",
        task_execution_metadata=connector_pb2.TaskExecutionMetadata(namespace="ns"),
        **kw,
    )


def category(name: str) -> connector_pb2.TaskCategory:
    return connector_pb2.TaskCategory(name=name, version=0)


def outputs(resource: Any) -> dict[str, Any]:
    lm = cv.resource_from_v2(resource).outputs
    return {} if lm is None else lm.to_python()


async def test_metadata_lists_every_connector(channel: grpc.aio.Channel) -> None:
    stub = service_pb2_grpc.ConnectorMetadataServiceStub(channel)
    listed = await stub.ListConnectors(connector_pb2.ListConnectorsRequest())
    got = {c.name: [(t.name, t.version) for t in c.supported_task_categories] for c in listed.connectors}
    assert got == {
        "Echo Connector": [("echo", 0)],
        "Failing Connector": [("failing", 0)],
        "Sync Echo": [("sync_echo", 0)],
        "Flyte2 Style": [("flyte2_style", 0)],
    }
    one = await stub.GetConnector(connector_pb2.GetConnectorRequest(name="Sync Echo"))
    assert one.connector.supported_task_categories[0].name == "sync_echo"
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.GetConnector(connector_pb2.GetConnectorRequest(name="nope"))
    assert info.value.code() == grpc.StatusCode.NOT_FOUND


async def test_health_and_reflection_name_the_flyte2_services(channel: grpc.aio.Channel) -> None:
    health = health_pb2_grpc.HealthStub(channel)
    for service in ("flyteidl2.connector.AsyncConnectorService", "flyteidl2.connector.ConnectorMetadataService"):
        reply = await health.Check(health_pb2.HealthCheckRequest(service=service))
        assert reply.status == health_pb2.HealthCheckResponse.SERVING


async def test_create_get_delete_with_outputs_of_several_types(channel: grpc.aio.Channel) -> None:
    stub = service_pb2_grpc.AsyncConnectorServiceStub(channel)
    created = await stub.CreateTask(create_request("echo", x=3))
    assert created.resource_meta == b'{"job_id": "job-t1", "x": 3}'
    got = await stub.GetTask(
        connector_pb2.GetTaskRequest(resource_meta=created.resource_meta, task_category=category("echo"))
    )
    r = got.resource
    assert (r.phase, r.message) == (Phase.SUCCEEDED, "job-t1 done")
    assert outputs(r) == {"n": 6, "s": "x=3", "f": 0.75, "ok": True}
    assert [(link.name, link.uri) for link in r.log_links] == [("console", "https://console/job-t1")]
    assert r.custom_info["job"] == "job-t1"
    await stub.DeleteTask(
        connector_pb2.DeleteTaskRequest(resource_meta=created.resource_meta, task_category=category("echo"))
    )
    assert SEEN[-1] == {"op": "delete", "job": "job-t1", "kwargs": {}}


async def test_connection_secrets_reach_the_connector_as_kwargs_and_get_secret(channel: grpc.aio.Channel) -> None:
    stub = service_pb2_grpc.AsyncConnectorServiceStub(channel)
    conn = security_pb2.Connection(secrets={"token": "abc"}, configs={"region": "eu"})
    created = await stub.CreateTask(create_request("echo", connection=conn))
    assert SEEN[-1] == {"op": "create", "kwargs": {"token": "abc", "region": "eu"}, "token": "abc"}
    # get is a plain def: it runs on a worker thread, and still sees the request's secrets.
    await stub.GetTask(
        connector_pb2.GetTaskRequest(
            resource_meta=created.resource_meta, task_category=category("echo"), connection=conn
        )
    )
    assert SEEN[-1] == {"op": "get", "kwargs": {"token": "abc", "region": "eu"}, "token": "abc"}
    # The next request without a connection sees none: secrets never leak between requests.
    await stub.GetTask(
        connector_pb2.GetTaskRequest(resource_meta=created.resource_meta, task_category=category("echo"))
    )
    assert SEEN[-1] == {"op": "get", "kwargs": {}, "token": "<none>"}


async def test_log_streaming_yields_every_page(channel: grpc.aio.Channel) -> None:
    stub = service_pb2_grpc.AsyncConnectorServiceStub(channel)
    meta = b'{"job_id": "j", "x": 0}'
    request = connector_pb2.GetTaskLogsRequest(resource_meta=meta, task_category=category("echo"), token="t0", lines=10)
    pages = [page async for page in stub.GetTaskLogs(request)]
    assert [list(p.body.results) for p in pages[:3]] == [[f"j page {i} from t0"] for i in range(3)]
    assert pages[3].header.token == "next"
    metrics = await stub.GetTaskMetrics(
        connector_pb2.GetTaskMetricsRequest(resource_meta=meta, task_category=category("echo"))
    )
    assert isinstance(metrics, connector_pb2.GetTaskMetricsResponse)


async def _codes(channel: grpc.aio.Channel, name: str) -> tuple[grpc.StatusCode, grpc.StatusCode]:
    """The status of the same failing CreateTask through Flyte 1 and Flyte 2."""
    v1 = agent_pb2_grpc.AsyncAgentServiceStub(channel)
    v2 = service_pb2_grpc.AsyncConnectorServiceStub(channel)
    v1_template = tasks_v1.TaskTemplate(type="failing", id={"name": name})
    codes = []
    for call in (
        v1.CreateTask(agent_pb2.CreateTaskRequest(template=v1_template, inputs=literals_v1.LiteralMap())),
        v2.CreateTask(create_request("failing", name=name)),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await call
        assert "Traceback" not in (info.value.details() or "")
        codes.append(info.value.code())
    return codes[0], codes[1]


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("permanent", grpc.StatusCode.INTERNAL),
        ("transient", grpc.StatusCode.UNAVAILABLE),
        ("bug", grpc.StatusCode.INTERNAL),
    ],
)
async def test_error_codes_match_flyte1(channel: grpc.aio.Channel, name: str, code: grpc.StatusCode) -> None:
    assert await _codes(channel, name) == (code, code)


async def test_request_errors_match_flyte1(channel: grpc.aio.Channel) -> None:
    v1 = agent_pb2_grpc.AsyncAgentServiceStub(channel)
    v2 = service_pb2_grpc.AsyncConnectorServiceStub(channel)
    v1_cat = agent_pb2.TaskCategory
    cases = [
        # unknown task type, undecodable resource_meta, missing optional method
        (
            v1.GetTask(agent_pb2.GetTaskRequest(task_category=v1_cat(name="nope"), resource_meta=b"{}")),
            v2.GetTask(connector_pb2.GetTaskRequest(task_category=category("nope"), resource_meta=b"{}")),
            grpc.StatusCode.NOT_FOUND,
        ),
        (
            v1.GetTask(agent_pb2.GetTaskRequest(task_category=v1_cat(name="echo"), resource_meta=b"not json")),
            v2.GetTask(connector_pb2.GetTaskRequest(task_category=category("echo"), resource_meta=b"not json")),
            grpc.StatusCode.INVALID_ARGUMENT,
        ),
        (
            v1.GetTaskMetrics(
                agent_pb2.GetTaskMetricsRequest(task_category=v1_cat(name="failing"), resource_meta=b"{}")
            ),
            v2.GetTaskMetrics(
                connector_pb2.GetTaskMetricsRequest(task_category=category("failing"), resource_meta=b"{}")
            ),
            grpc.StatusCode.UNIMPLEMENTED,
        ),
    ]
    for c1, c2, want in cases:
        got = []
        for call in (c1, c2):
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await call
            got.append(info.value.code())
        assert got == [want, want]
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await v2.GetTaskLogs(
            connector_pb2.GetTaskLogsRequest(task_category=category("failing"), resource_meta=b"{}")
        ).read()
    assert info.value.code() == grpc.StatusCode.UNIMPLEMENTED


async def test_malformed_request_bytes_are_invalid_argument(channel: grpc.aio.Channel) -> None:
    call = channel.unary_unary("/flyteidl2.connector.AsyncConnectorService/GetTask")
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call(b"\xff\xff\xff")
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_one_server_answers_flyte1_and_flyte2_clients_concurrently(
    served: ConnectorServer, channel: grpc.aio.Channel
) -> None:
    v1 = agent_pb2_grpc.AsyncAgentServiceStub(channel)
    v2 = service_pb2_grpc.AsyncConnectorServiceStub(channel)

    async def flyte1(i: int) -> dict[str, Any]:
        lm = literals_v1.LiteralMap(literals={"x": literals_v1.Literal.FromString(_int(i).SerializeToString())})
        t = tasks_v1.TaskTemplate(type="echo", id={"name": f"a{i}"})
        meta = (await v1.CreateTask(agent_pb2.CreateTaskRequest(template=t, inputs=lm))).resource_meta
        r = (
            await v1.GetTask(
                agent_pb2.GetTaskRequest(task_category=agent_pb2.TaskCategory(name="echo"), resource_meta=meta)
            )
        ).resource
        return outputs(r)

    async def flyte2(i: int) -> dict[str, Any]:
        meta = (await v2.CreateTask(create_request("echo", x=i, name=f"b{i}"))).resource_meta
        r = (
            await v2.GetTask(connector_pb2.GetTaskRequest(task_category=category("echo"), resource_meta=meta))
        ).resource
        return outputs(r)

    results = await asyncio.gather(*[f(i) for i in range(1, 11) for f in (flyte1, flyte2)])
    assert [r["n"] for r in results] == [2 * i for i in range(1, 11) for _ in range(2)]
    m = served.metrics
    assert m.value("flyte_connector_requests_success_total", {"task_type": "echo", "operation": "get"}) == 20
    assert m.value("flyte_connector_requests_success_total", {"task_type": "echo", "operation": "create"}) == 20


async def test_sync_connector_through_create_and_get(channel: grpc.aio.Channel) -> None:
    stub = service_pb2_grpc.AsyncConnectorServiceStub(channel)
    req = create_request("sync_echo", connection=security_pb2.Connection(secrets={"token": "zz"}))
    req.inputs.literals.add(name="size", value=_int(4))
    created = await stub.CreateTask(req)
    assert cv.is_envelope(created.resource_meta)
    assert SEEN[-1] == {"op": "do", "kwargs": {"token": "zz"}, "token": "zz"}
    # Another replica (a fresh server with its own registry instances) answers from the bytes alone.
    config = ServerConfig(host="127.0.0.1", port=0, metrics_port=None, protocols=["v2"])
    other = ConnectorServer(make_registry(), config)
    async with other, grpc.aio.insecure_channel(f"127.0.0.1:{other.port}") as ch2:
        stub2 = service_pb2_grpc.AsyncConnectorServiceStub(ch2)
        got = await stub2.GetTask(
            connector_pb2.GetTaskRequest(resource_meta=created.resource_meta, task_category=category("sync_echo"))
        )
        await stub2.DeleteTask(
            connector_pb2.DeleteTaskRequest(resource_meta=created.resource_meta, task_category=category("sync_echo"))
        )
    assert (got.resource.phase, got.resource.message) == (Phase.SUCCEEDED, "synced")
    assert outputs(got.resource) == {"blob": "yyyy", "size": 4}
    assert len(SEEN) == 1  # GetTask and DeleteTask did not call the connector again
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.GetTask(connector_pb2.GetTaskRequest(resource_meta=b'{"x": 1}', task_category=category("sync_echo")))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "sync envelope" in (info.value.details() or "")


async def test_sync_connector_large_outputs_go_to_outputs_pb(channel: grpc.aio.Channel, tmp_path: Any) -> None:
    stub = service_pb2_grpc.AsyncConnectorServiceStub(channel)
    size = cv.MAX_ENVELOPE_BYTES + 10
    req = create_request("sync_echo", x=0)
    req.inputs.literals.add(name="size", value=_int(size))
    req.output_prefix = str(tmp_path / "out")
    created = await stub.CreateTask(req)
    assert len(created.resource_meta) < 1000
    got = await stub.GetTask(
        connector_pb2.GetTaskRequest(resource_meta=created.resource_meta, task_category=category("sync_echo"))
    )
    assert got.resource.phase == Phase.SUCCEEDED and not got.resource.HasField("outputs")
    written = common_pb2.Outputs.FromString((tmp_path / "out" / "outputs.pb").read_bytes())
    by_name = {n.name: n.value.scalar.primitive for n in written.literals}
    assert by_name["size"].integer == size and len(by_name["blob"].string_value) == size
    # Without an output prefix there is nowhere to put them: the task fails with the reason.
    req.output_prefix = ""
    created = await stub.CreateTask(req)
    got = await stub.GetTask(
        connector_pb2.GetTaskRequest(resource_meta=created.resource_meta, task_category=category("sync_echo"))
    )
    assert got.resource.phase == Phase.FAILED
    assert "resource_meta limit" in got.resource.message and "no output_prefix" in got.resource.message


async def test_flyte2_style_connector_runs_on_both_protocols(channel: grpc.aio.Channel) -> None:
    v2 = service_pb2_grpc.AsyncConnectorServiceStub(channel)
    created = await v2.CreateTask(
        create_request("flyte2_style", x=4, connection=security_pb2.Connection(configs={"region": "eu"}))
    )
    expected = {
        "op": "create2",
        "template_type": "flyteidl2.core.tasks_pb2.TaskTemplate",
        "inputs": {"x": 4},
        "metadata_type": "flyteidl2.connector.connector_pb2",
        "kwargs": {"region": "eu"},
    }
    assert SEEN[-1] == expected
    got = await v2.GetTask(
        connector_pb2.GetTaskRequest(resource_meta=created.resource_meta, task_category=category("flyte2_style"))
    )
    assert outputs(got.resource) == {"y": 5}

    v1 = agent_pb2_grpc.AsyncAgentServiceStub(channel)
    lm = literals_v1.LiteralMap(literals={"x": literals_v1.Literal.FromString(_int(7).SerializeToString())})
    v1_template = tasks_v1.TaskTemplate.FromString(template("flyte2_style").SerializeToString())
    created1 = await v1.CreateTask(
        agent_pb2.CreateTaskRequest(
            template=v1_template, inputs=lm, task_execution_metadata=agent_pb2.TaskExecutionMetadata(namespace="n")
        )
    )
    assert SEEN[-1] == {**expected, "inputs": {"x": 7}, "kwargs": {}}
    got1 = await v1.GetTask(
        agent_pb2.GetTaskRequest(
            task_category=agent_pb2.TaskCategory(name="flyte2_style"), resource_meta=created1.resource_meta
        )
    )
    assert got1.resource.outputs.literals["y"].scalar.primitive.integer == 8
    assert [(link.name, link.uri) for link in got1.resource.log_links] == [("v2-link", "https://v2")]


async def test_protocol_selection_v2_only(tmp_path: Any) -> None:
    config = ServerConfig(
        host="127.0.0.1", port=0, metrics_port=None, protocols=["v2"], dispatch=DispatchConfig(stall_threshold=None)
    )
    async with ConnectorServer(make_registry(), config) as server:
        assert server.service_names == [
            "flyteidl2.connector.AsyncConnectorService",
            "flyteidl2.connector.ConnectorMetadataService",
        ]
        async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as ch:
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await agent_pb2_grpc.AgentMetadataServiceStub(ch).ListAgents(agent_pb2.ListAgentsRequest())
            assert info.value.code() == grpc.StatusCode.UNIMPLEMENTED
