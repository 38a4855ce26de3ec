"""The built-in connectors served by the real server, driven by FakePropeller over Flyte 1 and Flyte 2.

The server holds exactly what entry-point discovery finds (as ``flyteconnect serve`` does). Sync connectors go
through ExecuteTaskSync on Flyte 1 and through the CreateTask envelope on Flyte 2, which has no sync service. The
kit's pytest plugin provides ``fake_propeller`` and the ``both_protocols`` marker; ``connector_server`` is overridden
here so the module shares one server.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgpack
import pytest
from connector_helpers import free_port
from flyteidl.admin import agent_pb2

from flyteconnect.connector import Phase
from flyteconnect.connectors.postgres_dsn import allow_caller_dsn
from flyteconnect.connectors.sensor_reach import SensorReach, set_default_reach
from flyteconnect.local.task import ConnectorTask
from flyteconnect.models import LiteralMap
from flyteconnect.registry import discover_connectors
from flyteconnect.testing import ConnectorServer, FakePropeller, Route, TaskResult

SENSOR_CUSTOM = {"sensor_module": "flytekit.sensor.file_sensor", "sensor_name": "FileSensor", "sensor_config": None}


@pytest.fixture(scope="module")
def connector_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConnectorServer]:
    """One server for the module over the discovered built-ins (pooled clients are closed on its loop at stop).

    Its sensor may watch the tests' temporary directories, as ``serve --sensor-root <pytest's base temp>`` would.
    """
    previous = set_default_reach(SensorReach(roots=(str(tmp_path_factory.getbasetemp()),)))
    found = discover_connectors()
    assert not found.failures, found.failures
    try:
        with ConnectorServer(*found.connectors) as s:
            assert s.protocols == ["v1", "v2"]
            yield s
    finally:
        set_default_reach(previous)


def wire_methods(result: TaskResult) -> list[str]:
    """The calls after discovery, in order."""
    return [c.method for c in result.calls if c.method not in ("ListAgents", "ListConnectors")]


def assert_sync_path(result: TaskResult, protocol: str) -> None:
    """Flyte 1: one ExecuteTaskSync; Flyte 2: CreateTask (it runs there, the result rides in resource_meta), GetTask."""
    expected = ["ExecuteTaskSync"] if protocol == "v1" else ["CreateTask", "GetTask"]
    assert wire_methods(result) == expected
    assert result.count("DeleteTask") == 0


def raw_outputs(result: TaskResult) -> dict[str, Any]:
    """The last Resource's outputs, unpacked from msgpack as flytekit stores untyped dicts (either protocol)."""
    literals = LiteralMap.from_flyte_idl(result.resource.outputs).to_flyte_idl().literals
    out: dict[str, Any] = {}
    for name, lit in literals.items():
        if lit.HasField("collection"):
            out[name] = [msgpack.unpackb(x.scalar.binary.value) for x in lit.collection.literals]
        else:
            out[name] = msgpack.unpackb(lit.scalar.binary.value)
    return out


async def first_poll(fp: FakePropeller, run: asyncio.Task[TaskResult]) -> None:
    """Wait until ``fp`` has sent a GetTask that answered (the run is polling), or the run ended early."""
    # The kit offers no event for "a call was made"; its call log is what there is to watch.
    while not any(c.method == "GetTask" and c.ok for c in fp.calls) and not run.done():  # noqa: ASYNC110
        await asyncio.sleep(0.005)


# ---------------------------------------------------------------------------------------------------- discovery


def test_list_agents_reports_the_builtins(connector_server: ConnectorServer) -> None:
    fp = connector_server.propeller(protocol="v1")
    routes = asyncio.run(fp.discover())
    assert routes["webhook"] == {0: Route("Webhook Connector", is_sync=True)}
    assert routes["sensor"] == {0: Route("Sensor", is_sync=False)}
    assert routes["postgres_query"] == {0: Route("PostgreSQL Connector", is_sync=True)}
    listed = fp.calls[0].response
    assert isinstance(listed, agent_pb2.ListAgentsResponse)
    by_name = {a.name: a for a in listed.agents}
    assert list(by_name["Webhook Connector"].supported_task_types) == ["webhook"]
    assert by_name["Sensor"].supported_task_categories[0].name == "sensor"


def test_list_connectors_reports_the_builtins_on_flyte2(connector_server: ConnectorServer) -> None:
    routes = asyncio.run(connector_server.propeller(protocol="v2").discover())
    # Flyte 2 has no is_sync: every connector is reached through AsyncConnectorService.
    assert routes["webhook"] == {0: Route("Webhook Connector", is_sync=False)}
    assert routes["sensor"] == {0: Route("Sensor", is_sync=False)}
    assert routes["postgres_query"] == {0: Route("PostgreSQL Connector", is_sync=False)}


# ------------------------------------------------------------------------------------------------------ webhook


@pytest.mark.both_protocols
@pytest.mark.usefixtures("allow_loopback_egress")
async def test_webhook(http_server: Any, fake_propeller: FakePropeller) -> None:
    fp = fake_propeller
    protocol = fp.protocol
    echo = ConnectorTask(
        "echo",
        "webhook",
        inputs={"n": int},
        outputs={"info": dict},
        custom={"url": http_server.url + "/echo/{inputs.n}", "method": "POST", "data": {"n": "{inputs.n}"}},
    )
    before = len(http_server.requests)
    result = await fp.run(echo, {"n": 5})
    result.assert_succeeded()
    assert len(http_server.requests) == before + 1  # on Flyte 2 too: GetTask answers from resource_meta, no rerun
    assert_sync_path(result, protocol)
    assert result.outputs["info"]["status_code"] == 200
    sent = json.loads(result.outputs["info"]["response_data"])
    assert sent["json"] == {"n": 5} and sent["path"] == "/echo/5" and sent["method"] == "POST"
    if protocol == "v1":
        header, inputs = result.calls_to("ExecuteTaskSync")[0].request
        assert header.header.template == echo.task_template()
        assert inputs.inputs.literals["n"].scalar.primitive.integer == 5

    forbidden = ConnectorTask("forbidden", "webhook", custom={"url": http_server.url + "/status/403"})
    failed = await fp.run(forbidden)
    assert_sync_path(failed, protocol)
    assert failed.phase == Phase.FAILED and failed.error_code == "TaskFailedWithError"
    assert failed.message == "failed to run the job: Webhook failed with status code 403, response: status 403"
    assert failed.resource.message == "Webhook failed with status code 403, response: status 403"
    if protocol == "v1":
        assert failed.resource.state == agent_pb2.PERMANENT_FAILURE


@pytest.mark.both_protocols
@pytest.mark.usefixtures("allow_loopback_egress")
async def test_unreachable_webhook_is_unavailable(fake_propeller: FakePropeller) -> None:
    task = ConnectorTask("down", "webhook", custom={"url": f"http://127.0.0.1:{free_port()}/", "retries": 0})
    result = await fake_propeller.run(task)
    call = result.calls_to("ExecuteTaskSync" if fake_propeller.protocol == "v1" else "CreateTask")[0]
    assert call.code == "UNAVAILABLE" and "ConnectError" in call.details
    assert wire_methods(result) == [call.method]  # nothing polled, nothing deleted
    assert result.retryable and "code = Unavailable" in result.message


# ---------------------------------------------------------------------------------------------------- file sensor


def sensor_task(**custom: Any) -> ConnectorTask:
    return ConnectorTask("wait", "sensor", inputs={"path": str}, custom={**SENSOR_CUSTOM, **custom})


async def sense_until_written(fp: FakePropeller, path: str, write: Any) -> TaskResult:
    """Run the sensor on ``path``, write the file once the sensor has polled, and return the result."""
    run = asyncio.create_task(fp.run(sensor_task(), {"path": path}))
    await first_poll(fp, run)
    await asyncio.to_thread(write)
    return await run


def assert_sensed(result: TaskResult, path: str) -> None:
    result.assert_succeeded()
    assert result.message == f"{path} exists"
    methods = wire_methods(result)
    assert methods[0] == "CreateTask" and set(methods[1:]) == {"GetTask"} and len(methods) >= 3
    gets = result.calls_to("GetTask")
    assert gets[0].response.phase == Phase.RUNNING and gets[0].response.message == f"waiting for {path}"
    assert all(c.request.resource_meta == result.resource_meta for c in gets)
    assert result.count("DeleteTask") == 0  # Propeller deletes only on abort


@pytest.mark.both_protocols
async def test_file_sensor_on_a_local_file(tmp_path: Path, fake_propeller: FakePropeller) -> None:
    target = tmp_path / "flag"
    result = await sense_until_written(fake_propeller, str(target), lambda: target.write_text("here"))
    assert_sensed(result, str(target))


@pytest.mark.s3
@pytest.mark.both_protocols
async def test_file_sensor_on_s3(s3_server: Any, fake_propeller: FakePropeller) -> None:
    import s3fs

    bucket = f"sensed-{fake_propeller.protocol}"
    s3_server.create_bucket(bucket)
    path = f"s3://{bucket}/done/_SUCCESS"
    fs = s3fs.S3FileSystem(**s3_server.storage_options, skip_instance_cache=True)
    result = await sense_until_written(fake_propeller, path, lambda: fs.pipe(path, b"ok"))
    assert_sensed(result, path)


@pytest.mark.both_protocols
async def test_aborted_sensor_is_deleted_once(tmp_path: Path, fake_propeller: FakePropeller) -> None:
    result = await fake_propeller.run(sensor_task(), {"path": str(tmp_path / "never")}, abort_after_polls=2)
    assert result.phase == Phase.ABORTED and result.error_code is None
    assert wire_methods(result) == ["CreateTask", "GetTask", "GetTask", "DeleteTask"]
    (delete,) = result.calls_to("DeleteTask")
    assert delete.ok and delete.request.resource_meta == result.resource_meta
    assert delete.request.task_category.name == "sensor"


@pytest.mark.both_protocols
async def test_sensor_other_than_file_sensor_is_refused(fake_propeller: FakePropeller) -> None:
    result = await fake_propeller.run(sensor_task(sensor_name="HttpSensor"), {"path": "/x"})
    assert wire_methods(result) == ["CreateTask"]
    (create,) = result.calls_to("CreateTask")
    assert create.code == "INVALID_ARGUMENT" and "only runs FileSensor" in create.details
    assert result.retryable  # Propeller treats any CreateTask error as a retryable failure


# ----------------------------------------------------------------------------------------------------- postgres


@pytest.mark.postgres
@pytest.mark.both_protocols
@pytest.mark.usefixtures("allow_loopback_egress")
async def test_postgres(postgres_server: Any, fake_propeller: FakePropeller, request: pytest.FixtureRequest) -> None:
    fp = fake_propeller
    protocol = fp.protocol
    allow_caller_dsn(True)  # serve --postgres-allow-caller-dsn: the tasks below name the test cluster themselves
    request.addfinalizer(lambda: allow_caller_dsn(None))
    typed = ConnectorTask(
        "add_one",
        "postgres_query",
        inputs={"a": int},
        outputs={"results": list[dict], "rowcount": int},
        custom={"dsn": postgres_server.dsn},
        sql="SELECT %(a)s::int + 1 AS b",
    )
    result = await fp.run(typed, {"a": 41})
    result.assert_succeeded()
    assert_sync_path(result, protocol)
    assert result.outputs == {"results": [{"b": 42}], "rowcount": 1}

    # No declared outputs: flytekit's shape, ``results`` as a list of msgpack dicts (the kit returns no values).
    untyped = ConnectorTask(
        "add_two",
        "postgres_query",
        inputs={"a": int},
        custom={"dsn": postgres_server.dsn},
        sql=("SELECT %(a)s::int + 2 AS b"),
    )
    plain = await fp.run(untyped, {"a": 40})
    plain.assert_succeeded()
    assert plain.outputs == {} and raw_outputs(plain) == {"results": [{"b": 42}]}

    bad = ConnectorTask("bad", "postgres_query", custom={"dsn": postgres_server.dsn}, sql="SELECT nope")
    failed = await fp.run(bad)
    assert_sync_path(failed, protocol)
    assert failed.phase == Phase.FAILED
    assert failed.resource.message == 'PostgreSQL error: column "nope" does not exist (SQLSTATE 42703)'
    assert failed.message == "failed to run the job: " + failed.resource.message
