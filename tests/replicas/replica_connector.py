"""A connector for the multi-replica tests, served by ``flyteconnect serve -m`` in each replica process.

Its external system is the test's job service (``JOB_SERVICE_URL``), an HTTP server that counts the jobs it
starts. The service cannot tell a poller that a job finished: only a callback (``callback_url()``) can, so a
SUCCEEDED answer proves the callback reached the server's state.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import httpx

from flyteconnect import AsyncConnectorBase, CallbacksUnavailable, ConnectorRegistry, Phase, Resource, ResourceMeta
from flyteconnect import callback_url as job_callback_url


@dataclass
class RemoteJob(ResourceMeta):
    """The job service's id for the job."""

    job_id: str


class RemoteJobConnector(AsyncConnectorBase[RemoteJob]):
    """Starts a job on the job service; reports RUNNING until a callback says otherwise."""

    name = "Remote Job Connector"
    task_type_name = "remote_job"
    metadata_type = RemoteJob

    def _url(self, path: str) -> str:
        return os.environ["JOB_SERVICE_URL"] + path

    async def create(
        self, task_template: Any, output_prefix: str, inputs: Any = None, task_execution_metadata: Any = None, **kw: Any
    ) -> RemoteJob:
        try:
            callback: str | None = job_callback_url()
        except CallbacksUnavailable:
            callback = None
        async with httpx.AsyncClient(timeout=10) as client:
            reply = await client.post(self._url("/jobs"), json={"callback": callback})
            reply.raise_for_status()
            return RemoteJob(job_id=reply.json()["id"])

    async def get(self, resource_meta: RemoteJob, **kwargs: Any) -> Resource:
        async with httpx.AsyncClient(timeout=10) as client:
            reply = await client.get(self._url(f"/jobs/{resource_meta.job_id}"))
        if reply.status_code == 404:
            return Resource(phase=Phase.FAILED, message=f"job {resource_meta.job_id} is unknown")
        return Resource(phase=Phase.RUNNING, message=f"polled by pid {os.getpid()}")

    async def delete(self, resource_meta: RemoteJob, **kwargs: Any) -> None:
        async with httpx.AsyncClient(timeout=10) as client:
            await client.delete(self._url(f"/jobs/{resource_meta.job_id}"))


ConnectorRegistry.register(RemoteJobConnector())
