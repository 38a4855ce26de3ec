"""Where a local run sends its task: the Backend interface and the in-process backend (a connector registry).

The in-process backend holds connectors to what the server accepts (``flyteconnect.local.contract``: the same
result checks and output conversion, and the same event-loop watchdog). The runner drives every backend the same
way (create, poll, delete on abort, or one ``do`` for sync connectors), so a connector behaves the same in-process
as behind a server. Job handles are opaque to the runner: the ``resource_meta``
bytes for a server; in-process, the bytes plus the decoded metadata. The in-process backend encodes and decodes the
metadata once, exactly as a server does, so a metadata type that cannot round-trip fails here, on the laptop, rather
than in production; later polls reuse the decoded object.
"""

from __future__ import annotations

import asyncio
import inspect
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from flyteidl.admin import agent_pb2
from flyteidl.core import literals_pb2, tasks_pb2

from flyteconnect.connector import AsyncConnectorBase, ConnectorBase, ConnectorMethod, Resource, TaskCategory
from flyteconnect.connectors.storage_reach import local_run_output
from flyteconnect.errors import ConnectorError, ConnectorNotFound
from flyteconnect.local.contract import StallWatch, check_meta, check_resource
from flyteconnect.models import LiteralMap, TaskExecutionMetadata, TaskTemplate
from flyteconnect.registry import ConnectorRegistry

__all__ = ["Backend", "InProcessBackend", "InProcessHandle", "Job"]


@dataclass(frozen=True)
class Job:
    """One execution of a task: everything Propeller would put in CreateTask."""

    task_name: str
    template: tasks_pb2.TaskTemplate
    inputs: literals_pb2.LiteralMap
    output_prefix: str
    execution_metadata: agent_pb2.TaskExecutionMetadata
    execution_id: str

    @property
    def category(self) -> TaskCategory:
        """The task category the template asks for."""
        return TaskCategory(self.template.type, self.template.task_type_version)


@dataclass(frozen=True)
class InProcessHandle:
    """An in-process job: the encoded resource_meta and the metadata decoded from it."""

    encoded: bytes
    meta: Any


@runtime_checkable
class Backend(Protocol):
    """Runs jobs: in-process through a registry, or remotely through a connector server (one class per protocol).

    Methods raise flyteconnect errors (``ConnectorNotFound``, ``TransientError``...) or the connector's own exception.
    """

    def describe(self) -> str:
        """A short label for progress output, e.g. ``in-process`` or ``server 127.0.0.1:8000``."""
        ...

    async def is_sync(self, category: TaskCategory) -> bool:
        """True when ``category`` is served by a sync connector (one ``do`` call), False for create/get/delete."""
        ...

    async def do(self, job: Job) -> Resource:
        """Run a sync connector's task to completion."""
        ...

    async def create(self, job: Job) -> Any:
        """Start the job; returns an opaque handle (for servers, the resource_meta bytes)."""
        ...

    async def get(self, job: Job, handle: Any) -> Resource:
        """Poll the job."""
        ...

    async def delete(self, job: Job, handle: Any) -> None:
        """Cancel the job (idempotent on the connector side)."""
        ...

    async def aclose(self) -> None:
        """Release connections; the backend may be used again afterwards (it reconnects)."""
        ...


async def call_method(method: ConnectorMethod, **kwargs: Any) -> Any:
    """Call a connector method with the keywords it accepts: ``async def`` awaited, ``def`` on a worker thread."""
    kw = method.keywords(kwargs)
    if method.is_async:
        return await method.func(**kw)
    result = await asyncio.to_thread(method.func, **kw)
    if inspect.isawaitable(result):  # a def that returns a coroutine (a wrapped async function)
        result = await result
    return result


class InProcessBackend:
    """Runs jobs by calling connectors from a registry in this process (the process default registry if none)."""

    def __init__(self, registry: ConnectorRegistry | None = None, *, stall_threshold: float | None = 0.5) -> None:
        self._registry = registry
        self.stalls = StallWatch(stall_threshold) if stall_threshold else None
        """Reports ``async def`` methods blocking the loop, as the server does (None: off)."""

    @property
    def registry(self) -> ConnectorRegistry:
        """The registry connectors are looked up in (resolved at use, so later registrations are seen)."""
        return self._registry if self._registry is not None else ConnectorRegistry.default()

    def describe(self) -> str:
        """See Backend."""
        return "in-process"

    def connector(self, category: TaskCategory) -> ConnectorBase:
        """The connector for ``category`` (``ConnectorNotFound``, naming what is registered, if none)."""
        registry = self.registry
        try:
            return registry.get_connector(category.name, category.version)
        except ConnectorNotFound:
            registered = ", ".join(sorted(str(c) for c in registry.categories())) or "nothing"
            raise ConnectorNotFound(
                # flytekit's opening words (tests and log searches written for flytekit match them), then the help.
                f"Cannot find connector for task category: {category}. None is registered in this process"
                f" (registered: {registered}); import the module that registers it first"
                " (flyteconnect run -m my_connector.py ...) or install its package"
            ) from None

    async def is_sync(self, category: TaskCategory) -> bool:
        """See Backend."""
        return self.connector(category).is_sync

    def _method(self, job: Job, name: str) -> ConnectorMethod:
        connector = self.connector(job.category)
        method = connector.method(name)
        if method is None:
            kind = "sync" if connector.is_sync else "async"
            raise ConnectorError(f"{connector.name} ({job.category}) is a {kind} connector without {name}()")
        if self.stalls is not None and method.is_async:
            self.stalls.watch([connector])
        return method

    def _async_connector(self, job: Job) -> AsyncConnectorBase[Any]:
        connector = self.connector(job.category)
        if not isinstance(connector, AsyncConnectorBase):
            raise ConnectorError(f"{connector.name} ({job.category}) is not an async connector")
        return connector

    def _common_kwargs(self, job: Job) -> dict[str, Any]:
        return {
            "task_template": TaskTemplate(job.template),
            "inputs": LiteralMap.from_flyte_idl(job.inputs),
            "output_prefix": job.output_prefix,
            "task_execution_metadata": TaskExecutionMetadata(job.execution_metadata),
        }

    async def do(self, job: Job) -> Resource:
        """See Backend."""
        method = self._method(job, "do")
        with local_run_output(job.output_prefix):  # the runner chose this directory: its outputs may go there
            resource = await call_method(method, **self._common_kwargs(job))
        return check_resource(self.connector(job.category), method, resource)

    async def create(self, job: Job) -> InProcessHandle:
        """See Backend."""
        connector = self._async_connector(job)
        method = self._method(job, "create")
        with local_run_output(job.output_prefix):
            meta = await call_method(method, **self._common_kwargs(job))
        encoded = check_meta(connector, method, meta)
        # What get and delete receive is what a server would decode from Propeller's copy of the bytes.
        return InProcessHandle(encoded, connector.metadata_type.decode(encoded))

    async def get(self, job: Job, handle: InProcessHandle) -> Resource:
        """See Backend."""
        method = self._method(job, "get")
        resource = await call_method(method, resource_meta=handle.meta)
        return check_resource(self.connector(job.category), method, resource)

    async def delete(self, job: Job, handle: InProcessHandle) -> None:
        """See Backend."""
        await call_method(self._method(job, "delete"), resource_meta=handle.meta)

    async def aclose(self) -> None:
        """See Backend: stops this loop's stall watchdog."""
        if self.stalls is not None:
            self.stalls.stop()
