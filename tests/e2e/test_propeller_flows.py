"""End-to-end flows as Propeller drives them, through the testing kit, against the real server, on both protocols.

The connector's job is a real operating-system process: ``create`` starts a Python child that sleeps, then writes
``<output_prefix>/outputs.pb`` with flyteconnect.literals; ``get`` polls the process; ``delete`` kills it. The tests
use the kit's pytest plugin: ``connector_server`` is overridden here (one server for the module), ``fake_propeller``
and the ``both_protocols`` marker come from the plugin.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from flyteconnect import AsyncConnectorBase, ConnectorError, Phase, Resource, ResourceMeta, TransientError
from flyteconnect.local.task import ConnectorTask
from flyteconnect.server.dispatch import DispatchConfig
from flyteconnect.testing import ConnectorServer, FakePropeller, NotRouted, TaskResult

# The child: sleep, then write its outputs the way a Flyte task does (a serialized LiteralMap), or fail.
CHILD = """
import sys, time
from flyteconnect.literals import to_literal_map
seconds, n, fail, out = float(sys.argv[1]), int(sys.argv[2]), sys.argv[3] == "1", sys.argv[4]
time.sleep(seconds)
if fail:
    sys.exit("job failed on purpose")
with open(out, "wb") as f:
    f.write(to_literal_map({"doubled": 2 * n, "note": f"slept {seconds}"}).SerializeToString())
"""


@dataclass
class ProcessMeta(ResourceMeta):
    """What locates the job: the child's pid."""

    pid: int


class ProcessConnector(AsyncConnectorBase[ProcessMeta]):
    """Runs each task as a child process (plain ``def`` methods: the server runs them on its worker threads)."""

    name = "Process Connector"
    task_type_name = "process_job"
    metadata_type = ProcessMeta

    def __init__(self) -> None:
        super().__init__()
        self.children: dict[int, subprocess.Popen[bytes]] = {}
        self.deleted: list[int] = []
        self._lock = threading.Lock()

    def create(self, task_template: Any, output_prefix: str, inputs: Any = None, **kwargs: Any) -> ProcessMeta:
        values = inputs.to_python()
        args = [str(values["seconds"]), str(values["n"]), "1" if values.get("fail") else "0"]
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, *args, os.path.join(output_prefix, "outputs.pb")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        with self._lock:
            self.children[child.pid] = child
        return ProcessMeta(child.pid)

    def _child(self, meta: ProcessMeta) -> subprocess.Popen[bytes]:
        child = self.children.get(meta.pid)
        if child is None:
            raise ConnectorError(f"no job with pid {meta.pid} on this server")
        return child

    def get(self, resource_meta: ProcessMeta, **kwargs: Any) -> Resource:
        child = self._child(resource_meta)
        code = child.poll()
        if code is None:
            return Resource(phase=Phase.RUNNING, message=f"pid {child.pid} running")
        if code == 0:
            return Resource(phase=Phase.SUCCEEDED, message="exited 0")  # outputs are in outputs.pb
        err = child.stderr.read().decode().strip() if child.stderr else ""
        return Resource(phase=Phase.FAILED, message=f"exited {code}: {err}")

    def delete(self, resource_meta: ProcessMeta, **kwargs: Any) -> None:
        self.deleted.append(resource_meta.pid)
        child = self._child(resource_meta)
        child.kill()
        child.wait(10)  # reaped, so the pid is really gone

    def close(self) -> None:
        """Kill whatever a failing test left running."""
        for child in self.children.values():
            if child.poll() is None:
                child.kill()
                child.wait(10)
            if child.stderr:
                child.stderr.close()


class FlakyProcessConnector(ProcessConnector):
    """The same jobs, but the status backend is briefly down: get calls 2 to 22 of each job raise TransientError."""

    name = "Flaky Process Connector"
    task_type_name = "flaky_process_job"
    FAILING = range(2, 23)  # 21 calls = 7 GetTasks x (1 call + the server's 2 retries): more than Propeller's budget

    def __init__(self) -> None:
        super().__init__()
        self.gets: dict[int, int] = {}

    def get(self, resource_meta: ProcessMeta, **kwargs: Any) -> Resource:
        with self._lock:
            n = self.gets[resource_meta.pid] = self.gets.get(resource_meta.pid, 0) + 1
        if n in self.FAILING:
            raise TransientError(f"status backend unreachable (call {n})")
        return super().get(resource_meta, **kwargs)


def job(task_type: str = "process_job", version: int = 0, **options: Any) -> ConnectorTask:
    return ConnectorTask(
        "job",
        task_type,
        version,
        inputs={"seconds": float, "n": int, "fail": bool},
        outputs={"doubled": int, "note": str},
        **options,
    )


@pytest.fixture(scope="module")
def process() -> Iterator[ProcessConnector]:
    connector = ProcessConnector()
    yield connector
    connector.close()


@pytest.fixture(scope="module")
def flaky() -> Iterator[FlakyProcessConnector]:
    connector = FlakyProcessConnector()
    yield connector
    connector.close()


@pytest.fixture(scope="module")
def connector_server(process: ProcessConnector, flaky: FlakyProcessConnector) -> Iterator[ConnectorServer]:
    """Overrides the plugin's fixture: one server for the module; short transient back-off keeps the test quick."""
    with ConnectorServer(process, flaky, dispatch=DispatchConfig(transient_backoff=0.01)) as server:
        yield server


def pid_of(result: TaskResult) -> int:
    assert result.resource_meta is not None
    return ProcessMeta.decode(result.resource_meta).pid


def assert_gone(pid: int) -> None:
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


@pytest.mark.both_protocols
async def test_success_outputs_come_from_outputs_pb(fake_propeller: FakePropeller, process: ProcessConnector) -> None:
    result = await fake_propeller.run(job(), {"seconds": 0.2, "n": 21, "fail": False})
    result.assert_succeeded()
    assert result.outputs == {"doubled": 42, "note": "slept 0.2"}
    # The Resource carried no outputs: FakePropeller read them from the file the child wrote, as Propeller does.
    assert not result.resource.HasField("outputs")
    assert (Path(result.output_prefix) / "outputs.pb").is_file()
    methods = [c.method for c in result.calls][1:]
    assert methods[0] == "CreateTask" and set(methods[1:]) == {"GetTask"} and len(methods) >= 3
    gets = result.calls_to("GetTask")
    assert gets[0].response.phase == Phase.RUNNING and gets[-1].response.phase == Phase.SUCCEEDED
    assert result.count("DeleteTask") == 0 and pid_of(result) not in process.deleted
    assert process.children[pid_of(result)].returncode == 0


@pytest.mark.both_protocols
async def test_failed_process_fails_the_task(fake_propeller: FakePropeller) -> None:
    result = await fake_propeller.run(job(), {"seconds": 0.0, "n": 1, "fail": True})
    assert result.phase == Phase.FAILED and result.error_code == "TaskFailedWithError"
    assert result.message == "failed to run the job: exited 1: job failed on purpose"
    assert result.outputs == {} and result.count("DeleteTask") == 0


@pytest.mark.both_protocols
async def test_abort_deletes_once_and_kills_the_process(
    fake_propeller: FakePropeller, process: ProcessConnector
) -> None:
    result = await fake_propeller.run(job(), {"seconds": 60.0, "n": 1, "fail": False}, abort_after_polls=2)
    pid = pid_of(result)
    assert result.phase == Phase.ABORTED
    assert [c.method for c in result.calls][1:] == ["CreateTask", "GetTask", "GetTask", "DeleteTask"]
    (delete,) = result.calls_to("DeleteTask")
    assert delete.ok and delete.request.resource_meta == result.resource_meta
    assert process.deleted.count(pid) == 1
    assert process.children[pid].returncode == -signal.SIGKILL
    assert_gone(pid)


@pytest.mark.both_protocols
async def test_task_timeout_aborts_and_fails(fake_propeller: FakePropeller, process: ProcessConnector) -> None:
    result = await fake_propeller.run(job(timeout=0.3), {"seconds": 60.0, "n": 1, "fail": False})
    pid = pid_of(result)
    assert result.phase == Phase.FAILED and result.error_code == "Timeout"
    assert result.count("DeleteTask") == 1 and process.deleted.count(pid) == 1
    assert_gone(pid)


@pytest.mark.both_protocols
async def test_transient_status_failures_are_absorbed_by_the_server(
    fake_propeller: FakePropeller, flaky: FlakyProcessConnector
) -> None:
    result = await fake_propeller.run(job("flaky_process_job"), {"seconds": 0.3, "n": 5, "fail": False})
    result.assert_succeeded()
    assert result.outputs == {"doubled": 10, "note": "slept 0.3"}
    gets = result.calls_to("GetTask")
    # Propeller would have failed the task after 6 failed GetTasks; the server answered every one of them.
    assert all(c.ok for c in gets) and result.error_code is None
    unknown = [c.response for c in gets if "temporarily unavailable" in c.response.message]
    assert len(unknown) == 7
    assert all(r.phase == Phase.RUNNING for r in unknown)
    assert [f"({k} in a row)" in r.message for k, r in enumerate(unknown, 1)] == [True] * 7
    assert "status backend unreachable (call 22)" in unknown[-1].message
    assert flaky.gets[pid_of(result)] == len(gets) + 2 * 7  # each absorbed GetTask retried twice inside the server


@pytest.mark.both_protocols
async def test_unknown_task_type_is_not_routed(fake_propeller: FakePropeller) -> None:
    with pytest.raises(NotRouted, match="no connector advertises task type 'no_such_job'"):
        await fake_propeller.run(job("no_such_job"), {"seconds": 0.0, "n": 1, "fail": False})
    assert "CreateTask" not in [c.method for c in fake_propeller.calls]


@pytest.mark.both_protocols
async def test_version_miss_reaches_the_server_and_is_not_found(fake_propeller: FakePropeller) -> None:
    # Propeller sends a known type with an unknown version to the default deployment; the server has no such
    # connector and says NOT_FOUND, which Propeller treats as a failed (retryable) create.
    result = await fake_propeller.run(job(version=7), {"seconds": 0.0, "n": 1, "fail": False})
    assert [c.method for c in result.calls][1:] == ["CreateTask"]
    (create,) = result.calls_to("CreateTask")
    assert create.code == "NOT_FOUND" and "process_job" in create.details
    assert result.retryable and "code = NotFound" in result.message
