"""The built-in connectors served by the real gRPC server, called as Propeller calls them (flyteidl v1 stubs)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import grpc
import msgpack
import pytest
from connector_helpers import free_port, make_inputs, make_template
from flyteidl.admin import agent_pb2
from flyteidl.core import literals_pb2, tasks_pb2
from flyteidl.service import agent_pb2_grpc

from flyteconnect.connector import Phase
from flyteconnect.registry import ConnectorRegistry, discover_connectors
from flyteconnect.server.app import BackgroundServer, ServerConfig, serve_in_thread


@pytest.fixture(scope="module")
def server() -> Iterator[BackgroundServer]:
    """The server over exactly what entry-point discovery finds (as ``flyteconnect serve`` does)."""
    found = discover_connectors()
    assert not found.failures, found.failures
    config = ServerConfig(host="127.0.0.1", port=0, metrics_port=None, protocols=["v1"], grace=1)
    handle = serve_in_thread(ConnectorRegistry(found.connectors), config)
    yield handle
    for connector in found.connectors:  # clients live on the server's loop: close them there
        aclose = getattr(connector, "aclose", None)
        if aclose is not None:
            asyncio.run_coroutine_threadsafe(aclose(), handle.loop).result(10)
    handle.stop()


@pytest.fixture
async def channel(server: BackgroundServer) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(server.address) as ch:
        yield ch


async def execute_sync(channel: grpc.aio.Channel, template: Any, inputs: Any = None) -> agent_pb2.Resource:
    stub = agent_pb2_grpc.SyncAgentServiceStub(channel)
    requests = [
        agent_pb2.ExecuteTaskSyncRequest(
            header=agent_pb2.CreateRequestHeader(template=template.to_flyte_idl(), output_prefix="/tmp/out")
        ),
        agent_pb2.ExecuteTaskSyncRequest(inputs=literals_pb2.LiteralMap() if inputs is None else inputs.to_flyte_idl()),
    ]
    replies = [r async for r in stub.ExecuteTaskSync(iter(requests), timeout=20)]
    assert len(replies) == 1 and replies[0].WhichOneof("res") == "header"
    return replies[0].header.resource


async def test_list_agents_reports_the_builtins(channel: grpc.aio.Channel) -> None:
    listed = await agent_pb2_grpc.AgentMetadataServiceStub(channel).ListAgents(agent_pb2.ListAgentsRequest())
    by_name = {a.name: a for a in listed.agents}
    assert by_name["Webhook Connector"].is_sync and list(by_name["Webhook Connector"].supported_task_types) == [
        "webhook"
    ]
    assert not by_name["Sensor"].is_sync and by_name["Sensor"].supported_task_categories[0].name == "sensor"
    assert by_name["PostgreSQL Connector"].is_sync


async def test_webhook_over_grpc(channel: grpc.aio.Channel, http_server: Any) -> None:
    custom = {"url": http_server.url + "/echo/{inputs.n}", "method": "POST", "data": {"n": "{inputs.n}"}}
    resource = await execute_sync(channel, make_template("webhook", custom), make_inputs(n=5))
    assert resource.phase == Phase.SUCCEEDED, resource.message
    info = msgpack.unpackb(resource.outputs.literals["info"].scalar.binary.value)
    assert json.loads(info["response_data"])["json"] == {"n": 5}

    failed = await execute_sync(channel, make_template("webhook", {"url": http_server.url + "/status/403"}))
    assert failed.phase == Phase.FAILED and failed.state == agent_pb2.PERMANENT_FAILURE
    assert failed.message == "Webhook failed with status code 403, response: status 403"


async def test_unreachable_webhook_is_unavailable(channel: grpc.aio.Channel) -> None:
    custom = {"url": f"http://127.0.0.1:{free_port()}/", "retries": 0}
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await execute_sync(channel, make_template("webhook", custom))
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "ConnectError" in (err.value.details() or "")


async def test_file_sensor_over_grpc(channel: grpc.aio.Channel, tmp_path: Path) -> None:
    stub = agent_pb2_grpc.AsyncAgentServiceStub(channel)
    category = agent_pb2.TaskCategory(name="sensor", version=0)
    custom = {"sensor_module": "flytekit.sensor.file_sensor", "sensor_name": "FileSensor", "sensor_config": None}
    target = tmp_path / "flag"
    created = await stub.CreateTask(
        agent_pb2.CreateTaskRequest(
            template=make_template("sensor", custom).to_flyte_idl(),
            inputs=make_inputs(path=str(target)).to_flyte_idl(),
            output_prefix="/tmp/out",
        )
    )
    get = agent_pb2.GetTaskRequest(task_category=category, resource_meta=created.resource_meta)
    assert (await stub.GetTask(get)).resource.phase == Phase.RUNNING
    target.write_text("here")
    assert (await stub.GetTask(get)).resource.phase == Phase.SUCCEEDED
    await stub.DeleteTask(agent_pb2.DeleteTaskRequest(task_category=category, resource_meta=created.resource_meta))

    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.CreateTask(
            agent_pb2.CreateTaskRequest(
                template=make_template("sensor", {**custom, "sensor_name": "HttpSensor"}).to_flyte_idl(),
                inputs=make_inputs(path="/x").to_flyte_idl(),
            )
        )
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "only runs FileSensor" in (err.value.details() or "")


@pytest.mark.postgres
async def test_postgres_over_grpc(channel: grpc.aio.Channel, postgres_server: Any) -> None:
    template = make_template(
        "postgres_query",
        {"dsn": postgres_server.dsn},
        sql=tasks_pb2.Sql(statement="SELECT %(a)s::int + 1 AS b"),
    )
    resource = await execute_sync(channel, template, make_inputs(a=41))
    assert resource.phase == Phase.SUCCEEDED, resource.message
    rows = [msgpack.unpackb(x.scalar.binary.value) for x in resource.outputs.literals["results"].collection.literals]
    assert rows == [{"b": 42}]

    bad = make_template("postgres_query", {"dsn": postgres_server.dsn}, sql=tasks_pb2.Sql(statement="SELECT nope"))
    failed = await execute_sync(channel, bad)
    assert failed.phase == Phase.FAILED
    assert failed.message == 'PostgreSQL error: column "nope" does not exist (SQLSTATE 42703)'
