"""The connectors the benchmark serves with ``flyteconnect serve -m benchmarks/connectors.py``.

Each one answers at once (or after exactly ``SLEEP_SECONDS``) with the replies the bare servicer precomputes, so the
difference between the two servers is the framework's own cost: routing, decoding resource_meta, converting outputs,
metrics. benchmarks/flytekit_connectors.py holds the same connectors written against flytekit.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

from flyteconnect import AsyncConnectorBase, ConnectorRegistry, Phase, Resource, ResourceMeta, SyncConnectorBase

try:  # imported as a package module (tests) or as a file by `flyteconnect serve -m path/to/connectors.py`
    from benchmarks import payloads
except ImportError:  # pragma: no cover - file import without the repository root on sys.path
    import importlib.util
    import pathlib

    _spec = importlib.util.spec_from_file_location("bench_payloads", pathlib.Path(__file__).with_name("payloads.py"))
    assert _spec is not None and _spec.loader is not None
    payloads = importlib.util.module_from_spec(_spec)
    _spec.loader.exec_module(payloads)


@dataclass
class BenchMeta(ResourceMeta):
    """The job handle: ``done`` says whether the (pretend) job has finished."""

    job_id: str
    region: str
    done: bool = False


def _status(meta: BenchMeta) -> Resource:
    if meta.done:
        return Resource(phase=Phase.SUCCEEDED, message=f"job {meta.job_id} done", outputs=dict(payloads.OUTPUTS_PY))
    return Resource(phase=Phase.RUNNING, message=f"job {meta.job_id} running")


class BenchConnector(AsyncConnectorBase[BenchMeta]):
    """async def create/get/delete answering at once."""

    name = "Bench Connector"
    task_type_name = payloads.ASYNC_TYPE
    metadata_type = BenchMeta

    async def create(
        self,
        task_template: Any,
        output_prefix: str,
        inputs: Any = None,
        task_execution_metadata: Any = None,
        **kwargs: Any,
    ) -> BenchMeta:
        return BenchMeta(job_id="bench-job-000001", region=task_template.custom["Location"])

    async def get(self, resource_meta: BenchMeta, **kwargs: Any) -> Resource:
        return _status(resource_meta)

    async def delete(self, resource_meta: BenchMeta, **kwargs: Any) -> None:
        return None


class BenchSleepConnector(BenchConnector):
    """get awaits SLEEP_SECONDS (an I/O-bound poll of an external API)."""

    name = "Bench Sleep Connector"
    task_type_name = payloads.SLEEP_TYPE

    async def get(self, resource_meta: BenchMeta, **kwargs: Any) -> Resource:
        await asyncio.sleep(payloads.SLEEP_SECONDS)
        return _status(resource_meta)


class BenchBlockingConnector(BenchConnector):
    """A plain def get that blocks SLEEP_SECONDS (a synchronous SDK call): runs on the server's thread pool."""

    name = "Bench Blocking Connector"
    task_type_name = payloads.BLOCKING_TYPE

    def get(self, resource_meta: BenchMeta, **kwargs: Any) -> Resource:  # type: ignore[override]
        time.sleep(payloads.SLEEP_SECONDS)
        return _status(resource_meta)


class BenchSyncConnector(SyncConnectorBase):
    """ExecuteTaskSync: finishes at once with the outputs."""

    name = "Bench Sync Connector"
    task_type_name = payloads.SYNC_TYPE

    async def do(self, task_template: Any, output_prefix: str, inputs: Any = None, **kwargs: Any) -> Resource:
        return Resource(phase=Phase.SUCCEEDED, message="job bench-job-000001 done", outputs=dict(payloads.OUTPUTS_PY))


CONNECTORS = (BenchConnector, BenchSleepConnector, BenchBlockingConnector, BenchSyncConnector)

for _cls in CONNECTORS:
    ConnectorRegistry.register(_cls(), override=True)
