"""The benchmark connectors written against flytekit, for ``--against-flytekit``.

Loaded only inside a virtualenv with ``flytekit[connector]``, by ``pyflyte serve connector --modules
benchmarks.flytekit_connectors``. Same task types and replies as benchmarks/connectors.py.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

from flytekit.extend.backend.base_connector import (
    AsyncConnectorBase,
    ConnectorRegistry,
    Resource,
    ResourceMeta,
    SyncConnectorBase,
)
from flytekit.models.core.execution import TaskExecutionPhase

from benchmarks import payloads


@dataclass
class BenchMeta(ResourceMeta):
    """The job handle: ``done`` says whether the (pretend) job has finished."""

    job_id: str
    region: str
    done: bool = False


def _status(meta: BenchMeta) -> Resource:
    if meta.done:
        return Resource(
            phase=TaskExecutionPhase.SUCCEEDED, message=f"job {meta.job_id} done", outputs=dict(payloads.OUTPUTS_PY)
        )
    return Resource(phase=TaskExecutionPhase.RUNNING, message=f"job {meta.job_id} running")


class BenchConnector(AsyncConnectorBase):
    """async def create/get/delete answering at once."""

    name = "Bench Connector"

    def __init__(self, task_type_name: str = payloads.ASYNC_TYPE) -> None:
        super().__init__(task_type_name=task_type_name, metadata_type=BenchMeta)

    async def create(self, task_template: Any, output_prefix: str, inputs: Any = None, **kwargs: Any) -> BenchMeta:
        return BenchMeta(job_id="bench-job-000001", region=task_template.custom["Location"])

    async def get(self, resource_meta: BenchMeta, **kwargs: Any) -> Resource:
        return _status(resource_meta)

    async def delete(self, resource_meta: BenchMeta, **kwargs: Any) -> None:
        return None


class BenchSleepConnector(BenchConnector):
    """get awaits SLEEP_SECONDS."""

    name = "Bench Sleep Connector"

    def __init__(self) -> None:
        super().__init__(payloads.SLEEP_TYPE)

    async def get(self, resource_meta: BenchMeta, **kwargs: Any) -> Resource:
        await asyncio.sleep(payloads.SLEEP_SECONDS)
        return _status(resource_meta)


class BenchBlockingConnector(BenchConnector):
    """A plain def get that blocks SLEEP_SECONDS: flytekit runs it on the loop's default executor."""

    name = "Bench Blocking Connector"

    def __init__(self) -> None:
        super().__init__(payloads.BLOCKING_TYPE)

    def get(self, resource_meta: BenchMeta, **kwargs: Any) -> Resource:  # type: ignore[override]
        time.sleep(payloads.SLEEP_SECONDS)
        return _status(resource_meta)


class BenchSyncConnector(SyncConnectorBase):
    """ExecuteTaskSync: finishes at once with the outputs."""

    name = "Bench Sync Connector"

    def __init__(self) -> None:
        super().__init__(task_type_name=payloads.SYNC_TYPE)

    async def do(self, task_template: Any, output_prefix: str, inputs: Any = None, **kwargs: Any) -> Resource:
        return Resource(
            phase=TaskExecutionPhase.SUCCEEDED, message="job bench-job-000001 done", outputs=dict(payloads.OUTPUTS_PY)
        )


for _connector in (BenchConnector(), BenchSleepConnector(), BenchBlockingConnector(), BenchSyncConnector()):
    ConnectorRegistry.register(_connector)
