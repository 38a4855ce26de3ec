"""Real connectors for the local-execution tests.

- ``JobConnector`` (async, task type ``job``): the external job is a real asyncio task in this process that sleeps
  ``seconds`` then ends in the phase named by ``outcome``; it records every call.
- ``ProcessConnector`` (async, ``proc``): the external job is a real subprocess that sleeps, then writes
  ``<output_prefix>/outputs.pb`` itself through fsspec (local path or s3://); the Resource carries no outputs.
- ``EchoConnector`` (sync, ``echo``): ``do`` returns its inputs transformed, or the phase named by ``outcome``.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from typing import Any

from flyteidl.core import execution_pb2

from flyteconnect import AsyncConnectorBase, Phase, Resource, ResourceMeta, SyncConnectorBase
from flyteconnect.local import ConnectorTask


@dataclass
class JobMeta(ResourceMeta):
    job_id: str


@dataclass
class Calls:
    """What a connector was asked to do (thread-safe enough for the tests: appends only)."""

    create: list[dict[str, Any]] = field(default_factory=list)
    get: list[str] = field(default_factory=list)
    delete: list[str] = field(default_factory=list)


LOG = execution_pb2.TaskLog(name="console", uri="http://logs.example/job")


class JobConnector(AsyncConnectorBase[JobMeta]):
    """Jobs are asyncio tasks; inputs: seconds (float), outcome (str), x (int); output y = x * 2."""

    name = "Job Connector"
    task_type_name = "job"
    metadata_type = JobMeta

    def __init__(self, create_delay: float = 0.0, transient_gets: int = 0, fail_get: bool = False) -> None:
        super().__init__()
        self.calls = Calls()
        self.jobs: dict[str, asyncio.Task[Any]] = {}
        self.create_delay = create_delay
        self.transient_gets = transient_gets
        self.fail_get = fail_get
        self.creating = asyncio.Event()
        self.polled = asyncio.Event()

    async def create(self, task_template, inputs, output_prefix, task_execution_metadata=None, **kwargs):  # type: ignore[no-untyped-def]
        values = inputs.to_python()
        self.calls.create.append(
            {
                "values": values,
                "output_prefix": output_prefix,
                "template": task_template,
                "metadata": task_execution_metadata,
            }
        )
        self.creating.set()
        if self.create_delay:
            await asyncio.sleep(self.create_delay)
        job_id = f"j{len(self.calls.create)}"

        async def job() -> int:
            await asyncio.sleep(float(values.get("seconds", 0.0)))
            return int(values.get("x", 0)) * 2

        self.jobs[job_id] = asyncio.ensure_future(job())
        return JobMeta(job_id)

    async def get(self, resource_meta: JobMeta, **kwargs: Any) -> Resource:
        self.calls.get.append(resource_meta.job_id)
        self.polled.set()
        if self.fail_get:
            raise RuntimeError("the job API is broken")
        if self.transient_gets > 0:
            from flyteconnect import TransientError

            self.transient_gets -= 1
            raise TransientError("throttled")
        task = self.jobs[resource_meta.job_id]
        if not task.done():
            return Resource(phase=Phase.RUNNING, message="working", log_links=[LOG])
        outcome = self.calls.create[int(resource_meta.job_id[1:]) - 1]["values"].get("outcome", "SUCCEEDED")
        if outcome != "SUCCEEDED":
            return Resource(phase=Phase[outcome], message=f"job ended {outcome.lower()}", log_links=[LOG])
        return Resource(phase=Phase.SUCCEEDED, outputs={"y": task.result()}, log_links=[LOG])

    async def delete(self, resource_meta: JobMeta, **kwargs: Any) -> None:
        self.calls.delete.append(resource_meta.job_id)
        self.jobs[resource_meta.job_id].cancel()


def job_task(name: str = "job_task", timeout: float | None = None, **extra: Any) -> ConnectorTask:
    """A task for JobConnector."""
    return ConnectorTask(
        name,
        "job",
        inputs={"x": int, "seconds": float, "outcome": str},
        outputs={"y": int},
        timeout=timeout,
        **extra,
    )


# ---------------------------------------------------------------------------------------------- subprocess jobs

_WRITER = """
import sys, time, fsspec
from flyteidl.core import literals_pb2
prefix, x, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
time.sleep(seconds)
lm = literals_pb2.LiteralMap()
lm.literals["y"].scalar.primitive.integer = x * 2
lm.literals["label"].scalar.primitive.string_value = f"x={x}"
with fsspec.open(prefix.rstrip("/") + "/outputs.pb", "wb") as f:
    f.write(lm.SerializeToString())
"""


@dataclass
class ProcMeta(ResourceMeta):
    pid: int


class ProcessConnector(AsyncConnectorBase[ProcMeta]):
    """Jobs are subprocesses writing outputs.pb; ``def`` methods (run on worker threads by the runner)."""

    name = "Process Connector"
    task_type_name = "proc"
    metadata_type = ProcMeta

    def __init__(self) -> None:
        super().__init__()
        self.procs: dict[int, subprocess.Popen[bytes]] = {}
        self.deleted: list[int] = []
        self._lock = threading.Lock()

    def create(self, task_template, output_prefix, inputs=None, **kwargs):  # type: ignore[no-untyped-def]
        values = inputs.to_python()
        proc = subprocess.Popen(
            [sys.executable, "-c", _WRITER, output_prefix, str(values["x"]), str(values["seconds"])],
            env=dict(os.environ),
        )
        with self._lock:
            self.procs[proc.pid] = proc
        return ProcMeta(proc.pid)

    def get(self, resource_meta: ProcMeta, **kwargs: Any) -> Resource:
        code = self.procs[resource_meta.pid].poll()
        if code is None:
            return Resource(phase=Phase.RUNNING)
        if code != 0:
            return Resource(phase=Phase.FAILED, message=f"job exited with {code}")
        return Resource(phase=Phase.SUCCEEDED)  # the job wrote outputs.pb itself

    def delete(self, resource_meta: ProcMeta, **kwargs: Any) -> None:
        self.deleted.append(resource_meta.pid)
        proc = self.procs[resource_meta.pid]
        proc.kill()
        proc.wait()


def proc_task(name: str = "proc_task") -> ConnectorTask:
    """A task for ProcessConnector with two outputs."""
    return ConnectorTask(
        name, "proc", inputs={"x": int, "seconds": float}, outputs={"y": int, "label": str}, timeout=60
    )


# --------------------------------------------------------------------------------------------------------- sync


class EchoConnector(SyncConnectorBase):
    """Sync: outputs greeting = "hello <who>" and n = len(who); ``outcome`` picks a failure phase."""

    name = "Echo Connector"
    task_type_name = "echo"

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[dict[str, Any]] = []

    def do(self, task_template, output_prefix, inputs=None, **kwargs):  # type: ignore[no-untyped-def]
        values = inputs.to_python()
        self.calls.append({"values": values, "template": task_template, "output_prefix": output_prefix})
        outcome = values.get("outcome", "SUCCEEDED")
        if outcome == "RAISE":
            raise ValueError("echo exploded")
        if outcome != "SUCCEEDED":
            return Resource(phase=Phase[outcome], message=f"echo {outcome.lower()}")
        who = values["who"]
        return Resource(phase=Phase.SUCCEEDED, outputs={"greeting": f"hello {who}", "n": len(who)})


def echo_task(name: str = "echo_task") -> ConnectorTask:
    """A task for EchoConnector."""
    return ConnectorTask(name, "echo", inputs={"who": str, "outcome": str}, outputs={"greeting": str, "n": int})
