"""Example connectors the server tests drive over the wire (real connectors, no mocks)."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

from flyteidl.admin import agent_pb2
from flyteidl.core import literals_pb2

from flyteconnect import (
    AsyncConnectorBase,
    ConnectorError,
    Phase,
    Resource,
    ResourceMeta,
    SyncConnectorBase,
    TransientError,
)

# Shared with the tests (same process): what connectors saw, and gates tests open.
calls: Counter[str] = Counter()
deleted: list[str] = []
gate = threading.Event()


@dataclass
class EchoMeta(ResourceMeta):
    job_id: str
    kind: str = "scalars"


def echo_outputs(kind: str, job_id: str) -> Any:
    if kind == "scalars":
        return {"i": 42, "f": 2.5, "s": f"done {job_id}", "b": True}
    if kind == "collections":
        return {"l": [1, 2, 3], "names": ["a", "b"], "d": {"k": 1.5}}
    if kind == "literal_map":
        lit = literals_pb2.Literal(scalar=literals_pb2.Scalar(primitive=literals_pb2.Primitive(integer=7)))
        return literals_pb2.LiteralMap(literals={"x": lit})
    if kind == "none":
        return None
    raise ValueError(kind)


class EchoConnector(AsyncConnectorBase[EchoMeta]):
    """``async def`` methods; the job succeeds on the second poll with outputs chosen by ``custom['kind']``."""

    name = "Echo Connector"
    task_type_name = "echo"
    metadata_type = EchoMeta

    async def create(self, task_template, output_prefix, inputs=None, task_execution_metadata=None, **kwargs):
        values = inputs.to_python() if inputs is not None else {}
        job = f"{values.get('x', 0)}-{task_execution_metadata.namespace if task_execution_metadata else ''}"
        return EchoMeta(job_id=job, kind=task_template.custom.get("kind", "scalars"))

    async def get(self, resource_meta: EchoMeta, **kwargs):
        calls[resource_meta.job_id] += 1
        if calls[resource_meta.job_id] == 1:
            return Resource(phase=Phase.RUNNING, message="working")
        log = agent_pb2.flyteidl_dot_core_dot_execution__pb2.TaskLog(name="console", uri="https://logs/1")
        return Resource(
            phase=Phase.SUCCEEDED,
            outputs=echo_outputs(resource_meta.kind, resource_meta.job_id),
            log_links=[log],
            custom_info={"job": resource_meta.job_id},
        )

    async def delete(self, resource_meta: EchoMeta, **kwargs):
        deleted.append(resource_meta.job_id)


class EchoV1Connector(AsyncConnectorBase[EchoMeta]):
    """The same task type at version 1, with plain ``def`` methods (run on the worker threads)."""

    name = "Echo Connector"
    task_type_name = "echo"
    task_type_version = 1
    metadata_type = EchoMeta

    def create(self, task_template, output_prefix, inputs=None, **kwargs):
        return EchoMeta(job_id=f"v1-{threading.current_thread().name}")

    def get(self, resource_meta: EchoMeta, **kwargs):
        return Resource(phase=Phase.SUCCEEDED, message=f"version 1 on {threading.current_thread().name}")

    def delete(self, resource_meta: EchoMeta, **kwargs):
        deleted.append(resource_meta.job_id)


class AdderConnector(SyncConnectorBase):
    """A sync connector: ``do`` adds inputs a and b."""

    name = "Adder"
    task_type_name = "adder"

    async def do(self, task_template, output_prefix, inputs=None, **kwargs):
        values = inputs.to_python() if inputs is not None else {}
        if "fail" in values:
            raise ConnectorError("adder refuses", code="ADD_REFUSED")
        return Resource(phase=Phase.SUCCEEDED, outputs={"sum": values.get("a", 0) + values.get("b", 0)})


class BadSyncConnector(SyncConnectorBase):
    """A sync connector that returns a non-terminal phase (a bug Propeller cannot handle)."""

    name = "Bad Sync"
    task_type_name = "bad_sync"

    def do(self, task_template, output_prefix, inputs=None, **kwargs):
        return Resource(phase=Phase.RUNNING)


@dataclass
class LogMeta(ResourceMeta):
    job_id: str


class LogsConnector(AsyncConnectorBase[LogMeta]):
    """Implements the optional get_metrics and a paginated async-generator get_logs."""

    name = "Logs Connector"
    task_type_name = "logs"
    metadata_type = LogMeta

    async def create(self, task_template, output_prefix, inputs=None, **kwargs):
        return LogMeta(job_id="j")

    async def get(self, resource_meta, **kwargs):
        return Resource(phase=Phase.RUNNING)

    async def delete(self, resource_meta, **kwargs):
        return None

    async def get_metrics(self, resource_meta, queries=(), **kwargs):
        from flyteidl.core import metrics_pb2
        from google.protobuf import struct_pb2

        data = struct_pb2.Struct()
        data.update({"job": resource_meta.job_id})
        return agent_pb2.GetTaskMetricsResponse(
            results=[metrics_pb2.ExecutionMetricResult(metric=q, data=data) for q in queries]
        )

    async def get_logs(self, resource_meta, lines=0, token="", **kwargs):
        yield agent_pb2.GetTaskLogsResponse(header=agent_pb2.GetTaskLogsResponseHeader(token="t1"))
        if resource_meta.job_id == "stall":  # the log source stops answering after the first page
            await asyncio.sleep(30)
        for page in range(int(lines) or 3):
            await asyncio.sleep(0)
            yield agent_pb2.GetTaskLogsResponseBody(results=[f"line {page}"])


@dataclass
class FaultyMeta(ResourceMeta):
    mode: str
    seconds: float = 0.0


class FaultyConnector(AsyncConnectorBase[FaultyMeta]):
    """Misbehaves on purpose, as told by ``resource_meta.mode`` (get/delete) or ``custom['mode']`` (create)."""

    name = "Faulty Connector"
    task_type_name = "faulty"
    metadata_type = FaultyMeta

    async def create(self, task_template, output_prefix, inputs=None, **kwargs):
        mode = task_template.custom.get("mode", "ok")
        if mode == "raise":
            raise RuntimeError("create exploded")
        if mode == "bad_inputs":
            inputs.to_python({"x": int})
            return FaultyMeta(mode="ok")
        if mode == "wrong_type":
            return {"not": "a ResourceMeta"}
        if mode == "huge_error":
            raise RuntimeError("x" * 100_000)
        if mode == "hang":
            await asyncio.sleep(3600)
        return FaultyMeta(mode=mode)

    async def get(self, resource_meta: FaultyMeta, **kwargs):
        mode = resource_meta.mode
        calls[f"faulty:{mode}"] += 1
        if mode == "raise":
            raise RuntimeError("get exploded")
        if mode == "connector_error":
            raise ConnectorError("the warehouse said no", code="WAREHOUSE")
        if mode == "transient":
            raise TransientError("warehouse throttled us")
        if mode == "transient_path":  # a server path in the reason: callers must see <cwd>, never the path
            raise TransientError(f"cannot read {os.getcwd()}/cache/state.json")
        if mode == "flaky":  # one transient failure per two calls
            if calls["faulty:flaky"] % 2 == 1:
                raise TransientError("blip")
            return Resource(phase=Phase.RUNNING, message="recovered")
        if mode == "hang":
            await asyncio.sleep(resource_meta.seconds or 3600)
        if mode == "wrong_type":
            return {"phase": "SUCCEEDED"}
        if mode == "undefined":
            return Resource(phase=Phase.UNDEFINED)
        if mode == "bad_phase":
            return Resource(phase=99)
        if mode == "bad_outputs":
            return Resource(phase=Phase.SUCCEEDED, outputs={"x": object()})
        if mode == "bad_custom_info":
            return Resource(phase=Phase.SUCCEEDED, custom_info={"x": object()})
        if mode == "not_implemented":
            raise NotImplementedError
        if mode == "queued":
            return Resource(phase=Phase.QUEUED)
        if mode == "queued_then_transient":
            if calls["faulty:queued_then_transient"] == 1:
                return Resource(phase=Phase.QUEUED)
            raise TransientError("lost contact")
        return Resource(phase=Phase.RUNNING, message=mode)

    async def delete(self, resource_meta: FaultyMeta, **kwargs):
        if resource_meta.mode == "raise":
            raise RuntimeError("delete exploded")
        if resource_meta.mode == "hang":
            await asyncio.sleep(3600)


@dataclass
class BlockMeta(ResourceMeta):
    seconds: float = 0.0


class BlockingConnector(AsyncConnectorBase[BlockMeta]):
    """An ``async def get`` that blocks the thread it runs on (the classic bug the watchdog catches)."""

    name = "Blocking Connector"
    task_type_name = "blocker"
    metadata_type = BlockMeta

    async def create(self, task_template, output_prefix, inputs=None, **kwargs):
        return BlockMeta()

    async def get(self, resource_meta: BlockMeta, **kwargs):
        if resource_meta.seconds:
            time.sleep(resource_meta.seconds)  # noqa: ASYNC251 - the bug under test
        else:
            gate.wait(10)
        return Resource(phase=Phase.SUCCEEDED, message=threading.current_thread().name)

    async def delete(self, resource_meta: BlockMeta, **kwargs):
        return None


@dataclass
class SlowMeta(ResourceMeta):
    seconds: float


class SlowConnector(AsyncConnectorBase[SlowMeta]):
    """Takes ``seconds`` to answer get (cooperatively): in-flight calls for the drain test."""

    name = "Slow Connector"
    task_type_name = "slow"
    metadata_type = SlowMeta

    async def create(self, task_template, output_prefix, inputs=None, **kwargs):
        return SlowMeta(seconds=float(task_template.custom.get("seconds", 1.0)))

    async def get(self, resource_meta: SlowMeta, **kwargs):
        await asyncio.sleep(resource_meta.seconds)
        return Resource(phase=Phase.SUCCEEDED, message="slow done")

    async def delete(self, resource_meta: SlowMeta, **kwargs):
        return None


ALL = [
    EchoConnector,
    EchoV1Connector,
    AdderConnector,
    BadSyncConnector,
    LogsConnector,
    FaultyConnector,
    BlockingConnector,
    SlowConnector,
]
