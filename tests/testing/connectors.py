"""Connectors used by the testing-kit tests: each drives a real background asyncio job or fails on purpose."""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass
from typing import Any

from flyteconnect import AsyncConnectorBase, ConnectorError, Phase, Resource, ResourceMeta, SyncConnectorBase
from flyteconnect.local.task import ConnectorTask

_ids = itertools.count()


@dataclass
class JobMeta(ResourceMeta):
    job_id: str


class SleepConnector(AsyncConnectorBase[JobMeta]):
    """Starts a real asyncio task that sleeps, then reports ``y = x * 2``; delete cancels it."""

    name = "Sleep Connector"
    task_type_name = "sleep"
    metadata_type = JobMeta

    def __init__(self, seconds: float = 0.05) -> None:
        super().__init__()
        self.seconds = seconds
        self.jobs: dict[str, asyncio.Task[int]] = {}
        self.deleted: list[str] = []

    async def create(self, task_template: Any, output_prefix: str, inputs: Any = None, **kwargs: Any) -> JobMeta:
        x = inputs.to_python()["x"] if inputs is not None else 0
        job_id = f"job-{next(_ids)}"

        async def work() -> int:
            await asyncio.sleep(self.seconds)
            return int(x) * 2

        self.jobs[job_id] = asyncio.get_running_loop().create_task(work())
        return JobMeta(job_id)

    async def get(self, resource_meta: JobMeta, **kwargs: Any) -> Resource:
        job = self.jobs.get(resource_meta.job_id)
        if job is None:
            raise ConnectorError(f"unknown job {resource_meta.job_id}")
        if not job.done():
            return Resource(phase=Phase.RUNNING, message="sleeping")
        if job.cancelled():
            return Resource(phase=Phase.ABORTED)
        return Resource(phase=Phase.SUCCEEDED, outputs={"y": job.result()})

    async def delete(self, resource_meta: JobMeta, **kwargs: Any) -> None:
        self.deleted.append(resource_meta.job_id)
        job = self.jobs.get(resource_meta.job_id)
        if job is not None:
            job.cancel()


class BrokenGetConnector(AsyncConnectorBase[JobMeta]):
    """create works; every get raises, so the server answers INTERNAL on every poll."""

    name = "Broken Get"
    task_type_name = "broken_get"
    metadata_type = JobMeta

    def __init__(self, running_first: int = 0) -> None:
        super().__init__()
        self.gets = 0
        self.running_first = running_first

    def create(self, task_template: Any, output_prefix: str, inputs: Any = None, **kwargs: Any) -> JobMeta:
        return JobMeta("j")

    def get(self, resource_meta: JobMeta, **kwargs: Any) -> Resource:
        self.gets += 1
        if self.gets <= self.running_first:
            return Resource(phase=Phase.RUNNING)
        raise RuntimeError("backend exploded")

    def delete(self, resource_meta: JobMeta, **kwargs: Any) -> None:
        return None


class EchoConnector(SyncConnectorBase):
    """A sync connector: ``greeting = "hello " + name``."""

    name = "Echo Connector"
    task_type_name = "echo"

    def do(self, task_template: Any, output_prefix: str, inputs: Any = None, **kwargs: Any) -> Resource:
        name = inputs.to_python()["name"]
        if name == "fail":
            return Resource(phase=Phase.FAILED, message="asked to fail")
        return Resource(phase=Phase.SUCCEEDED, outputs={"greeting": f"hello {name}"})


SLEEP_TASK = ConnectorTask("double", "sleep", inputs={"x": int}, outputs={"y": int})
ECHO_TASK = ConnectorTask("greet", "echo", inputs={"name": str}, outputs={"greeting": str})
BROKEN_TASK = ConnectorTask("broken", "broken_get")
