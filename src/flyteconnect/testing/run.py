"""``run_connector``: drive one connector in-process, as Propeller would, without gRPC.

The connector is called through the local runner's in-process backend, so its resource_meta is encoded and decoded
exactly as a server does (a metadata type that cannot round-trip fails here), ``def`` methods run on a worker thread
and ``async def`` ones on the loop; what the server would refuse (a Resource with phase UNDEFINED, outputs that cannot
become literals) raises ConnectorError, as the server answers INTERNAL. The outcome is read with Propeller's rules
(outputs come from the Resource or from ``<output_prefix>/outputs.pb``) and returned, never raised.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Mapping
from typing import Any

from flyteconnect.connector import ConnectorBase, Phase, Resource
from flyteconnect.local.backend import InProcessBackend, Job
from flyteconnect.local.outputs import default_raw_prefix, join_uri, make_output_dir, read_outputs_pb
from flyteconnect.local.sync import run_sync
from flyteconnect.registry import ConnectorRegistry
from flyteconnect.testing._task import PreparedTask, minimal_template, prepare_task
from flyteconnect.testing.results import Call, TaskResult, propeller_status, python_outputs

__all__ = ["arun_connector", "run_connector"]


class _Recorder:
    """Calls the backend and records each call (method name, arguments, result or exception)."""

    def __init__(self, backend: InProcessBackend) -> None:
        self.backend = backend
        self.calls: list[Call] = []

    async def call(self, method: str, request: Any, *args: Any) -> Any:
        try:
            response = await getattr(self.backend, method)(*args)
        except Exception as e:
            self.calls.append(Call(method, request, None, type(e).__name__, str(e)))
            raise
        self.calls.append(Call(method, request, response))
        return response


async def arun_connector(
    connector: ConnectorBase,
    task: Any = None,
    inputs: Mapping[str, Any] | Any | None = None,
    *,
    output_prefix: str | None = None,
    poll_interval: float = 0.0,
    max_polls: int = 1000,
    abort_after_polls: int | None = None,
    storage_options: Mapping[str, Any] | None = None,
) -> TaskResult:
    """Async ``run_connector``: create → poll get → outputs (or one ``do`` for a sync connector).

    Exceptions raised by the connector propagate unchanged (the recorded calls are attached as a note). ``max_polls``
    bounds polling so a connector stuck in RUNNING fails the test instead of hanging it; ``abort_after_polls`` deletes
    the job after that many polls, as Propeller does on abort.
    """
    prepared = prepare_task(task if task is not None else minimal_template(connector.task_category), inputs)
    if prepared.category != connector.task_category:
        raise ValueError(f"the task asks for {prepared.category} but {connector!r} serves {connector.task_category}")
    backend = _Recorder(InProcessBackend(ConnectorRegistry([connector])))
    if output_prefix is None:
        output_prefix = join_uri(default_raw_prefix(), "t" + uuid.uuid4().hex[:19])
        make_output_dir(output_prefix)
    job = prepared.job(output_prefix)
    try:
        return await _drive(
            connector, prepared, job, backend, poll_interval, max_polls, abort_after_polls, storage_options
        )
    except Exception as e:
        if hasattr(e, "add_note"):
            e.add_note(f"calls made: {[f'{c.method}:{c.code}' for c in backend.calls]}")
        raise


async def _drive(
    connector: ConnectorBase,
    prepared: PreparedTask,
    job: Job,
    backend: _Recorder,
    poll_interval: float,
    max_polls: int,
    abort_after_polls: int | None,
    storage_options: Mapping[str, Any] | None,
) -> TaskResult:
    result = TaskResult(phase=Phase.UNDEFINED, output_prefix=job.output_prefix, calls=backend.calls)
    if connector.is_sync:
        resource: Resource = await backend.call("do", job, job)
        if not _read(resource, result).terminal:
            result.phase, result.error_code = Phase.FAILED, "SyncNotTerminal"
            result.message = f"a sync connector must return a terminal phase, got {Phase(resource.phase).name}"
            return result
    else:
        handle: Any = await backend.call("create", job, job)
        # The in-process backend's handle carries the encoded bytes Propeller would store.
        result.resource_meta = bytes(getattr(handle, "encoded", handle))
        polls = 0
        while True:
            if abort_after_polls is not None and polls >= abort_after_polls:
                await backend.call("delete", handle, job, handle)
                result.phase, result.message = Phase.ABORTED, f"aborted after {polls} poll(s)"
                return result
            if polls >= max_polls:
                raise AssertionError(f"{connector!r} was still {result.phase.name} after {max_polls} polls")
            await asyncio.sleep(poll_interval)
            resource = await backend.call("get", handle, job, handle)
            polls += 1
            status = _read(resource, result)
            if status.terminal:
                break
    if result.phase == Phase.SUCCEEDED:
        await _outputs(prepared, resource, result, storage_options)
    return result


def _read(resource: Resource, result: TaskResult) -> Any:
    """Record the resource as the server would send it, and Propeller's reading of it."""
    pb = resource.to_flyte_idl()  # validates outputs and custom_info exactly as the server does
    status = propeller_status(pb.phase, pb.state, pb.message)
    result.resource = pb
    result.phase, result.message, result.error_code = status.phase, status.message, status.error_code
    result.log_links = list(pb.log_links)
    result.custom_info = dict(resource.custom_info or {})
    return status


async def _outputs(
    prepared: PreparedTask, resource: Resource, result: TaskResult, storage_options: Mapping[str, Any] | None
) -> None:
    if not prepared.declares_outputs:
        return  # Propeller writes nothing for a task without outputs
    pb = result.resource
    if pb.HasField("outputs"):
        literal_map = pb.outputs
    else:
        try:
            literal_map = await asyncio.to_thread(read_outputs_pb, result.output_prefix, storage_options)
        except Exception as e:
            result.phase, result.message, result.error_code = Phase.FAILED, str(e), "OutputsNotFound"
            return
    result.outputs = python_outputs(literal_map, prepared.output_types)


def run_connector(
    connector: ConnectorBase,
    task: Any = None,
    inputs: Mapping[str, Any] | Any | None = None,
    **options: Any,
) -> TaskResult:
    """Run ``task`` (a ConnectorTask or a TaskTemplate; by default an empty template of the connector's category)
    with ``inputs`` through ``connector`` in-process, as Propeller would, and return the TaskResult.

    Works in plain and in async code (inside a running loop it uses a helper thread). Options: see
    ``arun_connector``.
    """
    return run_sync(lambda: arun_connector(connector, task, inputs, **options), label="run_connector")
