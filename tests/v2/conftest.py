"""Connectors and a real loopback server speaking Flyte 1 and Flyte 2 for the Flyte 2 tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import grpc
import pytest
from flyteidl2.connector import connector_pb2
from flyteidl2.core import execution_pb2 as execution_v2

from flyteconnect.connector import AsyncConnectorBase, Phase, Resource, ResourceMeta, SyncConnectorBase
from flyteconnect.errors import ConnectorError, TransientError
from flyteconnect.registry import ConnectorRegistry
from flyteconnect.secrets import get_secret
from flyteconnect.server.app import ConnectorServer, ServerConfig
from flyteconnect.server.dispatch import DispatchConfig
from flyteconnect.v2 import AsyncConnector


@dataclass
class JobMeta(ResourceMeta):
    job_id: str
    x: int = 0


SEEN: list[dict[str, Any]] = []
"""What connectors observed (kwargs, secrets, input types), appended per call; cleared by the server fixture."""


class EchoConnector(AsyncConnectorBase[JobMeta]):
    """flytekit style: LiteralMap view inputs; returns outputs of several types; logs in pages."""

    name = "Echo Connector"
    task_type_name = "echo"
    metadata_type = JobMeta

    async def create(
        self,
        task_template: Any,
        output_prefix: str,
        inputs: Any = None,
        task_execution_metadata: Any = None,
        **kwargs: Any,
    ) -> JobMeta:
        x = inputs.literals["x"].scalar.primitive.integer if "x" in inputs.literals else 0
        SEEN.append({"op": "create", "kwargs": dict(kwargs), "token": get_secret("token", default="<none>")})
        return JobMeta(job_id=f"job-{task_template.id.name}", x=x)

    def get(self, resource_meta: JobMeta, **kwargs: Any) -> Resource:
        SEEN.append({"op": "get", "kwargs": dict(kwargs), "token": get_secret("token", default="<none>")})
        x = resource_meta.x
        return Resource(
            phase=Phase.SUCCEEDED,
            message=f"{resource_meta.job_id} done",
            outputs={"n": x * 2, "s": f"x={x}", "f": x / 4, "ok": x > 0},
            log_links=[execution_v2.TaskLog(name="console", uri=f"https://console/{resource_meta.job_id}")],
            custom_info={"job": resource_meta.job_id},
        )

    async def delete(self, resource_meta: JobMeta, **kwargs: Any) -> None:
        SEEN.append({"op": "delete", "job": resource_meta.job_id, "kwargs": dict(kwargs)})

    async def get_logs(self, resource_meta: JobMeta, token: str = "", **kwargs: Any) -> AsyncIterator[Any]:
        for page in range(3):
            yield connector_pb2.GetTaskLogsResponse(
                body=connector_pb2.GetTaskLogsResponseBody(results=[f"{resource_meta.job_id} page {page} from {token}"])
            )
        yield connector_pb2.GetTaskLogsResponse(header=connector_pb2.GetTaskLogsResponseHeader(token="next"))

    async def get_metrics(self, resource_meta: JobMeta, **kwargs: Any) -> Any:
        return connector_pb2.GetTaskMetricsResponse()


class FailingConnector(AsyncConnectorBase[JobMeta]):
    """Fails in create according to the task name: the status codes must match on both protocols."""

    name = "Failing Connector"
    task_type_name = "failing"
    metadata_type = JobMeta

    def create(
        self,
        task_template: Any,
        output_prefix: str,
        inputs: Any = None,
        task_execution_metadata: Any = None,
        **kwargs: Any,
    ) -> JobMeta:
        kind = task_template.id.name
        if kind == "permanent":
            raise ConnectorError("the job was rejected")
        if kind == "transient":
            raise TransientError("throttled")
        if kind == "bug":
            raise KeyError("oops")
        return JobMeta(job_id=kind)

    def get(self, resource_meta: JobMeta, **kwargs: Any) -> Resource:
        return Resource(phase=Phase.RUNNING)

    def delete(self, resource_meta: JobMeta, **kwargs: Any) -> None:
        return None


class SyncEcho(SyncConnectorBase):
    """A sync connector: served on Flyte 2 through CreateTask + the resource_meta envelope."""

    name = "Sync Echo"
    task_type_name = "sync_echo"

    def do(
        self,
        task_template: Any,
        output_prefix: str,
        inputs: Any = None,
        task_execution_metadata: Any = None,
        **kwargs: Any,
    ) -> Resource:
        size = inputs.literals["size"].scalar.primitive.integer if "size" in inputs.literals else 1
        SEEN.append({"op": "do", "kwargs": dict(kwargs), "token": get_secret("token", default="<none>")})
        return Resource(phase=Phase.SUCCEEDED, message="synced", outputs={"blob": "y" * size, "size": size})


class Flyte2Style(AsyncConnector[JobMeta]):
    """Written as for flyte-sdk: native inputs, flyteidl2 template, connection kwargs."""

    name = "Flyte2 Style"
    task_type_name = "flyte2_style"
    metadata_type = JobMeta

    async def create(
        self,
        task_template: Any,
        output_prefix: str,
        inputs: Any = None,
        task_execution_metadata: Any = None,
        **kwargs: Any,
    ) -> JobMeta:
        SEEN.append(
            {
                "op": "create2",
                "template_type": type(task_template).__module__ + "." + type(task_template).__name__,
                "inputs": inputs,
                "metadata_type": type(task_execution_metadata).__module__ if task_execution_metadata else None,
                "kwargs": dict(kwargs),
            }
        )
        return JobMeta(job_id=task_template.id.name, x=int(inputs["x"]))

    async def get(self, resource_meta: JobMeta, **kwargs: Any) -> Resource:
        return Resource(
            phase=Phase.SUCCEEDED,
            outputs={"y": resource_meta.x + 1},
            log_links=[execution_v2.TaskLog(name="v2-link", uri="https://v2")],
        )

    async def delete(self, resource_meta: JobMeta, **kwargs: Any) -> None:
        return None


def make_registry() -> ConnectorRegistry:
    """A registry with every test connector."""
    return ConnectorRegistry([EchoConnector(), FailingConnector(), SyncEcho(), Flyte2Style()])


@pytest.fixture
async def served() -> AsyncIterator[ConnectorServer]:
    """The real app: one ConnectorServer on a free loopback port serving Flyte 1 and Flyte 2 (the default)."""
    SEEN.clear()
    config = ServerConfig(
        host="127.0.0.1",
        port=0,
        metrics_port=None,
        reflection=True,
        dispatch=DispatchConfig(threads=4, stall_threshold=None, transient_retries=-1),
    )
    async with ConnectorServer(make_registry(), config) as server:
        yield server


@pytest.fixture
async def channel(served: ConnectorServer) -> AsyncIterator[grpc.aio.Channel]:
    """A client channel to the served fixture."""
    async with grpc.aio.insecure_channel(f"127.0.0.1:{served.port}") as ch:
        yield ch
