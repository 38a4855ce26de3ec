"""FakePropeller against the real flyteconnect server on loopback: Propeller's behaviour, call by call."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from flyteconnect import ConnectorError, Phase
from flyteconnect.local.task import ConnectorTask
from flyteconnect.testing import ConnectorServer, FakePropeller, NotRouted

from .connectors import BROKEN_TASK, ECHO_TASK, SLEEP_TASK, BrokenGetConnector, EchoConnector, SleepConnector


@pytest.fixture
def sleep() -> SleepConnector:
    return SleepConnector(0.03)


@pytest.fixture
def broken() -> BrokenGetConnector:
    return BrokenGetConnector()


@pytest.fixture
def server(sleep: SleepConnector, broken: BrokenGetConnector) -> Iterator[ConnectorServer]:
    with ConnectorServer(sleep, broken, EchoConnector()) as s:
        yield s


@pytest.mark.parametrize("protocol", ["v1", "v2"])
async def test_async_task_create_poll_outputs(server: ConnectorServer, protocol: str) -> None:
    fp = server.propeller(protocol=protocol, poll_interval=0.01)
    result = await fp.run(SLEEP_TASK, {"x": 4})
    result.assert_succeeded()
    assert result.outputs == {"y": 8}
    methods = [c.method for c in result.calls]
    assert methods[0] == ("ListAgents" if protocol == "v1" else "ListConnectors")
    assert methods[1] == "CreateTask" and set(methods[2:]) == {"GetTask"}
    assert result.count("DeleteTask") == 0  # never after a normal completion
    get = result.calls_to("GetTask")[0].request
    assert get.resource_meta == result.resource_meta and get.output_prefix == result.output_prefix
    if protocol == "v1":
        assert get.task_type == "sleep" and get.task_category.name == "sleep"  # deprecated field still sent


def test_discovery_and_create_request_look_like_propellers(server: ConnectorServer) -> None:
    fp = server.propeller(poll_interval=0.01)
    result = fp.run_sync(SLEEP_TASK, {"x": 1})
    assert fp.routes is not None and fp.routes["echo"][0].is_sync and not fp.routes["sleep"][0].is_sync
    create = result.calls_to("CreateTask")[0].request
    meta = create.task_execution_metadata
    assert meta.task_execution_id.task_id.name == "double" and meta.namespace == "flyteconnect-development"
    assert meta.max_attempts == 0 and not meta.interruptible  # Propeller v1.16.8 leaves them unset
    # Discovery is cached like Propeller's registry: the second run does not call ListAgents again.
    again = fp.run_sync(SLEEP_TASK, {"x": 2})
    assert again.count("ListAgents") == 0 and again.outputs == {"y": 4}
    assert sum(1 for c in fp.calls if c.method == "ListAgents") == 1


def test_sync_connector_uses_execute_task_sync(server: ConnectorServer) -> None:
    result = server.propeller().run_sync(ECHO_TASK, {"name": "sync"})
    assert [c.method for c in result.calls] == ["ListAgents", "ExecuteTaskSync"]
    header, inputs = result.calls[1].request
    assert header.WhichOneof("part") == "header" and inputs.WhichOneof("part") == "inputs"
    assert not header.header.max_dataset_size_bytes
    assert result.outputs == {"greeting": "hello sync"}


async def test_sync_connector_over_flyte2_goes_through_create_and_get(server: ConnectorServer) -> None:
    result = await server.propeller(protocol="v2", poll_interval=0.01).run(ECHO_TASK, {"name": "v2"})
    assert [c.method for c in result.calls][:2] == ["ListConnectors", "CreateTask"]
    assert result.outputs == {"greeting": "hello v2"}


def test_failed_sync_task_keeps_propellers_message(server: ConnectorServer) -> None:
    result = server.propeller().run_sync(ECHO_TASK, {"name": "fail"})
    assert result.phase == Phase.FAILED
    assert result.message == "failed to run the job: asked to fail"
    assert result.error_code == "TaskFailedWithError"


def test_gives_up_after_five_failed_polls_like_propeller(server: ConnectorServer, broken: BrokenGetConnector) -> None:
    # flyteplugins' webapi cache fails the item once SyncFailureCount > maxSystemFailures (5): the sixth failed
    # GetTask is the last one sent, and with no resource ever fetched the task fails with AutoRefreshCacheFailed.
    result = server.propeller(poll_interval=0.001).run_sync(BROKEN_TASK)
    gets = result.calls_to("GetTask")
    assert len(gets) == 6 and broken.gets == 6
    assert all(c.code == "INTERNAL" for c in gets)
    assert result.phase == Phase.FAILED
    assert result.error_code == "AutoRefreshCacheFailed"
    assert result.message.startswith("rpc error: code = Internal desc = ")
    assert "backend exploded" in result.message


def test_max_system_failures_is_configurable() -> None:
    connector = BrokenGetConnector(running_first=2)
    with ConnectorServer(connector) as server:
        result = server.propeller(poll_interval=0.001, max_system_failures=1).run_sync(BROKEN_TASK)
    # 2 good polls, then 2 failures (count 2 > 1): the task looks stuck in RUNNING, as in Propeller.
    assert [c.code for c in result.calls_to("GetTask")] == ["OK", "OK", "INTERNAL", "INTERNAL"]
    assert result.phase == Phase.RUNNING and result.error_code == "AutoRefreshCacheFailed"
    assert "stays RUNNING" in result.message


@pytest.mark.parametrize("protocol", ["v1", "v2"])
def test_abort_sends_delete_once(server: ConnectorServer, sleep: SleepConnector, protocol: str) -> None:
    sleep.seconds = 60
    result = server.propeller(protocol=protocol, poll_interval=0.005).run_sync(
        SLEEP_TASK, {"x": 1}, abort_after_polls=3
    )
    assert result.phase == Phase.ABORTED
    assert result.count("GetTask") == 3 and result.count("DeleteTask") == 1
    delete = result.calls_to("DeleteTask")[0].request
    assert delete.resource_meta == result.resource_meta
    assert len(sleep.deleted) == 1


async def test_cancelling_the_run_aborts_the_job(server: ConnectorServer, sleep: SleepConnector) -> None:
    sleep.seconds = 60
    fp = server.propeller(poll_interval=0.005)
    run = asyncio.ensure_future(fp.run(SLEEP_TASK, {"x": 1}))
    while sum(1 for c in fp.calls if c.method == "GetTask") < 2:  # noqa: ASYNC110 - polling the call log
        await asyncio.sleep(0.005)
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run
    assert [c.method for c in fp.calls].count("DeleteTask") == 1
    assert len(sleep.deleted) == 1


def test_task_timeout_aborts_and_fails(server: ConnectorServer, sleep: SleepConnector) -> None:
    sleep.seconds = 60
    task = ConnectorTask("slow", "sleep", inputs={"x": int}, outputs={"y": int}, timeout=0.05)
    result = server.propeller(poll_interval=0.01).run_sync(task, {"x": 1})
    assert result.phase == Phase.FAILED and result.error_code == "Timeout"
    assert result.count("DeleteTask") == 1 and len(sleep.deleted) == 1


class Slow(SleepConnector):
    task_type_name = "slow"

    async def create(self, task_template: Any, output_prefix: str, inputs: Any = None, **kwargs: Any) -> Any:
        if task_template.custom.get("slow_create"):
            await asyncio.sleep(1.0)
        return await super().create(task_template, output_prefix, inputs)


def test_per_call_deadlines() -> None:
    with ConnectorServer(Slow()) as server:
        fp = server.propeller(poll_interval=0.001, timeouts={"CreateTask": 0.05, "GetTask": 0.05})
        assert fp.timeout_for("DeleteTask") == 10.0 and fp.timeout_for("GetTask") == 0.05
        slow_create = ConnectorTask("t", "slow", inputs={"x": int}, custom={"slow_create": True})
        created = fp.run_sync(slow_create, {"x": 1})
        # A create past its deadline: a retryable failure, Go's status text in the message.
        assert created.phase == Phase.RETRYABLE_FAILED
        assert "code = DeadlineExceeded" in created.message


def test_create_error_is_a_retryable_failure_with_propellers_message() -> None:
    class CreateFails(SleepConnector):
        task_type_name = "create_fails"

        async def create(self, task_template: Any, output_prefix: str, inputs: Any = None, **kwargs: Any) -> Any:
            raise ConnectorError("quota exceeded")

    with ConnectorServer(CreateFails()) as server:
        result = server.propeller().run_sync(ConnectorTask("t", "create_fails"))
    assert result.phase == Phase.RETRYABLE_FAILED and result.retryable
    assert result.message.startswith("failed to create task from connector with rpc error: code = Internal desc =")
    assert "quota exceeded" in result.message


def test_unadvertised_task_type_is_not_routed(server: ConnectorServer) -> None:
    with pytest.raises(NotRouted, match="'nobody'"):
        server.propeller().run_sync(ConnectorTask("t", "nobody"))


def test_version_miss_falls_back_to_the_default_connector_async(server: ConnectorServer) -> None:
    fp = server.propeller()
    fp.run_sync(ECHO_TASK, {"name": "x"})
    route = fp.route(ConnectorTask("t", "echo", task_type_version=3).task_category)
    assert not route.is_sync and route.connector == "<default connector>"


def test_one_version_per_name_survives_discovery() -> None:
    class EchoV1(EchoConnector):
        task_type_version = 1

    with ConnectorServer(EchoConnector(), EchoV1()) as server:
        fp = server.propeller()
        routes = asyncio.run(fp.discover())
    # Both versions are advertised by the same connector name; Propeller keeps the last written version only.
    assert list(routes["echo"]) == [1]


def test_unreachable_server_yields_no_routes() -> None:
    from support import free_port

    fp = FakePropeller(f"127.0.0.1:{free_port()}", timeouts={"ListConnectors": 0.2})
    assert asyncio.run(fp.discover()) == {}
    assert fp.calls[0].code in ("UNAVAILABLE", "DEADLINE_EXCEEDED")


def test_bad_options_are_refused() -> None:
    with pytest.raises(ValueError, match="protocol"):
        FakePropeller("x:1", protocol="v3")
    with pytest.raises(ValueError, match="CreateTask"):
        FakePropeller("x:1", timeouts={"Create": 1})
