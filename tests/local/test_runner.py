"""The in-process runner against real connectors whose jobs are asyncio tasks."""

from __future__ import annotations

import asyncio
import itertools
import signal
from dataclasses import dataclass
from typing import Any

import pytest
from local_helpers import LOG, EchoConnector, JobConnector, echo_task, job_task

from flyteconnect import (
    AsyncConnectorBase,
    ConnectorError,
    ConnectorNotFound,
    ConnectorRegistry,
    Phase,
    Resource,
    ResourceMeta,
    SyncConnectorBase,
)
from flyteconnect.local import (
    AsyncConnectorExecutorMixin,
    ConnectorTask,
    LocalRunner,
    PollSchedule,
    TaskFailed,
    TaskTimeout,
)

FAST = PollSchedule(0.01, 1.5, 0.05)


def runner(*connectors: Any, **kwargs: Any) -> LocalRunner:
    kwargs.setdefault("poll", FAST)
    kwargs.setdefault("progress", "none")
    return LocalRunner(ConnectorRegistry(connectors), **kwargs)


async def test_async_connector_success_returns_typed_output() -> None:
    connector = JobConnector()
    result = await runner(connector).arun_result(job_task(), x=21, seconds=0.05, outcome="SUCCEEDED")
    assert result.value == 42 and result.outputs == {"y": 42}
    assert result.phase == Phase.SUCCEEDED
    assert result.log_links == [LOG]
    assert len(connector.calls.get) >= 2  # polled while RUNNING, then SUCCEEDED
    assert connector.calls.delete == []  # nothing to clean up after a normal end
    created = connector.calls.create[0]
    assert created["values"] == {"x": 21, "seconds": 0.05, "outcome": "SUCCEEDED"}
    assert created["output_prefix"] == result.output_prefix
    assert created["template"].type == "job"
    # a synthetic execution identity, as Propeller would send
    assert created["metadata"].task_execution_id.node_execution_id.execution_id.name == result.execution_id
    assert created["metadata"].task_execution_id.task_id.name == "job_task"


async def test_float_output_is_typed_by_the_interface() -> None:
    # The connector returns an int for an output declared float: the task's types decide.
    class IntOut(SyncConnectorBase):
        name = "int out"
        task_type_name = "int_out"

        def do(self, task_template: Any, output_prefix: str, inputs: Any = None, **kw: Any) -> Resource:
            return Resource(phase=Phase.SUCCEEDED, outputs={"y": 3})

    value = await runner(IntOut()).arun(ConnectorTask("t", "int_out", outputs={"y": float}))
    assert value == 3.0 and isinstance(value, float)


def test_sync_connector_several_outputs_are_a_named_tuple() -> None:
    connector = EchoConnector()
    out = runner(connector).run(echo_task(), who="ada", outcome="SUCCEEDED")
    assert out == ("hello ada", 3)
    assert (out.greeting, out.n) == ("hello ada", 3)
    assert connector.calls[0]["template"].type == "echo"


def test_task_without_outputs_returns_none() -> None:
    class Nothing(SyncConnectorBase):
        name = "nothing"
        task_type_name = "nothing"

        async def do(self, task_template: Any, output_prefix: str, inputs: Any = None, **kw: Any) -> Resource:
            return Resource(phase=Phase.SUCCEEDED, outputs={"ignored": 1})

    assert runner(Nothing()).run(ConnectorTask("n", "nothing")) is None


@pytest.mark.parametrize("outcome", ["FAILED", "ABORTED", "RETRYABLE_FAILED"])
async def test_failure_phases_raise_task_failed(outcome: str) -> None:
    connector = JobConnector()
    with pytest.raises(TaskFailed) as info:
        await runner(connector).arun(job_task("bad"), x=1, seconds=0, outcome=outcome)
    err = info.value
    assert err.phase == Phase[outcome]
    assert err.message == f"job ended {outcome.lower()}"
    assert err.log_links == [LOG]
    assert err.retryable == (outcome == "RETRYABLE_FAILED")
    assert f"'bad' ended in phase {outcome}" in str(err) and "http://logs.example/job" in str(err)
    assert connector.calls.delete == []  # the job is over: no delete


@pytest.mark.parametrize("outcome", ["FAILED", "RETRYABLE_FAILED"])
def test_sync_failure_phases_raise_task_failed(outcome: str) -> None:
    with pytest.raises(TaskFailed, match=f"echo {outcome.lower()}") as info:
        runner(EchoConnector()).run(echo_task(), who="x", outcome=outcome)
    assert info.value.phase == Phase[outcome]


def test_connector_exception_propagates_unchanged_with_a_note() -> None:
    with pytest.raises(ValueError, match="echo exploded") as info:
        runner(EchoConnector()).run(echo_task("boom"), who="x", outcome="RAISE")
    assert any("'boom'" in note for note in getattr(info.value, "__notes__", []))


async def test_timeout_deletes_the_job_once() -> None:
    connector = JobConnector()
    with pytest.raises(TaskTimeout) as info:
        await runner(connector).arun(job_task("slow", timeout=0.2), x=1, seconds=60, outcome="SUCCEEDED")
    assert info.value.phase == Phase.RUNNING and info.value.timeout == pytest.approx(0.2)
    assert info.value.deleted and "the job was deleted" in str(info.value)
    assert connector.calls.delete == ["j1"]
    await asyncio.sleep(0)
    assert connector.jobs["j1"].cancelled()


async def test_runner_timeout_overrides_the_task_timeout() -> None:
    connector = JobConnector()
    with pytest.raises(TaskTimeout):
        await runner(connector, timeout=0.1).arun(job_task(timeout=3600), x=1, seconds=60, outcome="SUCCEEDED")
    assert connector.calls.delete == ["j1"]


async def test_cancelling_arun_deletes_the_job_once() -> None:
    connector = JobConnector()
    run = asyncio.ensure_future(runner(connector).arun(job_task(), x=1, seconds=60, outcome="SUCCEEDED"))
    await connector.polled.wait()
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run
    assert connector.calls.delete == ["j1"]


async def test_cancel_during_create_waits_for_the_handle_then_deletes() -> None:
    connector = JobConnector(create_delay=0.2)
    run = asyncio.ensure_future(runner(connector).arun(job_task(), x=1, seconds=60, outcome="SUCCEEDED"))
    await connector.creating.wait()
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run
    assert connector.calls.delete == ["j1"]  # the job created after the cancel did not leak


async def test_failing_poll_deletes_the_job_and_raises_the_connector_error() -> None:
    connector = JobConnector(fail_get=True)
    with pytest.raises(RuntimeError, match="job API is broken"):
        await runner(connector).arun(job_task(), x=1, seconds=60, outcome="SUCCEEDED")
    assert connector.calls.delete == ["j1"]


async def test_transient_poll_errors_are_retried() -> None:
    connector = JobConnector(transient_gets=3)
    assert await runner(connector).arun(job_task(), x=2, seconds=0, outcome="SUCCEEDED") == 4
    assert len(connector.calls.get) == 4


async def test_too_many_transient_poll_errors_fail() -> None:
    from flyteconnect import TransientError

    connector = JobConnector(transient_gets=10)
    with pytest.raises(TransientError):
        await runner(connector, max_poll_failures=2).arun(job_task(), x=2, seconds=0, outcome="SUCCEEDED")
    assert len(connector.calls.get) == 3
    assert connector.calls.delete == ["j1"]


async def test_unknown_task_type_is_connector_not_found() -> None:
    with pytest.raises(ConnectorNotFound, match="nope_v0"):
        await runner(JobConnector()).arun(ConnectorTask("t", "nope"))


@pytest.mark.parametrize(
    ("inputs", "match"),
    [
        ({"x": 1, "seconds": 0.0}, "missing input"),
        ({"x": 1, "seconds": 0.0, "outcome": "S", "zzz": 3}, "unexpected input"),
    ],
)
def test_input_names_are_checked(inputs: dict, match: str) -> None:
    with pytest.raises(TypeError, match=match):
        runner(JobConnector()).run(job_task(), **inputs)


async def test_undefined_phase_fails_as_on_the_server_not_an_endless_poll() -> None:
    @dataclass
    class M(ResourceMeta):
        n: int

    class Undefined(AsyncConnectorBase[M]):
        name = "undefined"
        task_type_name = "undefined"
        metadata_type = M

        async def create(self, task_template: Any, output_prefix: str, inputs: Any = None, **kw: Any) -> M:
            return M(1)

        async def get(self, resource_meta: M, **kw: Any) -> Resource:
            return Resource(phase=Phase.UNDEFINED)

        async def delete(self, resource_meta: M, **kw: Any) -> None:
            pass

    with pytest.raises(
        ConnectorError, match=r"undefined\.get\(\) \(.*test_runner.py:\d+\) returned .* phase UNDEFINED"
    ):
        await runner(Undefined()).arun(ConnectorTask("u", "undefined"))


def test_sync_run_works_inside_a_running_loop_and_leaves_signal_handlers_alone() -> None:
    before = (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM))
    assert runner(JobConnector()).run(job_task(), x=5, seconds=0, outcome="SUCCEEDED") == 10
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before

    async def notebook_cell() -> Any:
        # Jupyter: a loop is already running in this thread; run() must not try to nest it.
        return runner(JobConnector()).run(job_task(), x=6, seconds=0, outcome="SUCCEEDED")

    assert asyncio.run(notebook_cell()) == 12


def test_mixin_call_uses_the_default_registry() -> None:
    class MyTask(AsyncConnectorExecutorMixin):
        """A flytekit-style task class: gives its template and its interface."""

        def __init__(self) -> None:
            self.inner = job_task("mixin_task")
            self.name = "mixin_task"
            self.input_types = self.inner.input_types
            self.output_types = self.inner.output_types

        def task_template(self) -> Any:
            return self.inner.task_template()

    registry = ConnectorRegistry.default()
    connector = JobConnector()
    registry.register(connector)
    try:
        task = MyTask()
        assert task(x=4, seconds=0, outcome="SUCCEEDED") == 8
        literals = task.execute(x=1, seconds=0, outcome="SUCCEEDED")
        assert literals.to_python() == {"y": 2}
    finally:
        registry.unregister(connector.task_category)


async def test_many_concurrent_runs_share_one_loop() -> None:
    connector = JobConnector()
    r = runner(connector)
    results = await asyncio.gather(*(r.arun(job_task(), x=i, seconds=0.05, outcome="SUCCEEDED") for i in range(1000)))
    assert results == [2 * i for i in range(1000)]
    assert len(connector.calls.create) == 1000 and connector.calls.delete == []


def test_poll_schedule_backs_off_to_its_maximum() -> None:
    delays = PollSchedule().delays()
    first = [next(delays) for _ in range(10)]
    assert first[:3] == [0.5, 0.75, 1.125]
    assert first[-1] == 10.0 and all(b >= a for a, b in itertools.pairwise(first))
    with pytest.raises(ValueError):
        PollSchedule(initial=0)


async def test_sync_connector_timeout_has_nothing_to_delete() -> None:
    class Slow(SyncConnectorBase):
        name = "slow sync"
        task_type_name = "slow_sync"

        async def do(self, task_template: Any, output_prefix: str, inputs: Any = None, **kw: Any) -> Resource:
            await asyncio.sleep(30)
            return Resource(phase=Phase.SUCCEEDED)

    async with runner(Slow()) as r:
        with pytest.raises(TaskTimeout) as info:
            await r.arun(ConnectorTask("s", "slow_sync", timeout=0.1))
    assert not info.value.deleted and "deleted" not in str(info.value)
