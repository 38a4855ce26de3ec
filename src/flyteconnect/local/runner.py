"""LocalRunner: run connector tasks on a laptop, in-process or against a connector server.

The runner converts inputs with the task's types, then either calls a sync connector's ``do`` once, or ``create``s
the job and polls ``get`` (sleeping on the event loop, backing off) until a terminal phase. It enforces the task's
timeout, deletes the job exactly once when the run is abandoned (timeout, Ctrl-C, SIGTERM, cancellation, a failing
poll), and returns typed Python outputs, read from the Resource or from ``<output_prefix>/outputs.pb``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Protocol, runtime_checkable

from flyteidl.admin import agent_pb2
from flyteidl.core import identifier_pb2, literals_pb2, tasks_pb2

from flyteconnect.connector import Phase, Resource, is_terminal_phase
from flyteconnect.errors import ConnectorError, TransientError
from flyteconnect.local.backend import Backend, InProcessBackend, Job
from flyteconnect.local.errors import OutputsNotFound, TaskFailed, TaskTimeout
from flyteconnect.local.outputs import default_raw_prefix, join_uri, make_output_dir, read_outputs_pb, shape_outputs
from flyteconnect.local.progress import Progress, RunState, make_progress
from flyteconnect.local.sync import run_sync
from flyteconnect.registry import ConnectorRegistry

__all__ = ["ExecutableTask", "LocalRunner", "PollSchedule", "RunResult"]

log = logging.getLogger(__name__)


@runtime_checkable
class ExecutableTask(Protocol):
    """What the runner needs from a task: its name, its TaskTemplate and the Python types of its interface."""

    name: str
    input_types: Mapping[str, Any]
    output_types: Mapping[str, Any]

    def task_template(self) -> tasks_pb2.TaskTemplate:
        """The TaskTemplate Propeller would send."""
        ...


@dataclass(frozen=True)
class PollSchedule:
    """Delays between polls: ``initial`` seconds, multiplied by ``factor`` after each poll, capped at ``maximum``."""

    initial: float = 0.5
    factor: float = 1.5
    maximum: float = 10.0

    def __post_init__(self) -> None:
        if self.initial <= 0 or self.maximum < self.initial or self.factor < 1:
            raise ValueError(f"invalid poll schedule {self}: need 0 < initial <= maximum and factor >= 1")

    def delays(self) -> Iterator[float]:
        """The infinite sequence of delays."""
        delay = self.initial
        while True:
            yield delay
            delay = min(delay * self.factor, self.maximum)


@dataclass
class RunResult:
    """The outcome of a successful run."""

    task_name: str
    execution_id: str
    output_prefix: str
    phase: int
    message: str
    log_links: list[Any]
    custom_info: dict[str, Any] | None
    literals: literals_pb2.LiteralMap
    outputs: dict[str, Any]
    """Output name -> Python value, typed by the task's declared output types."""
    output_names: Sequence[str] = field(default_factory=tuple)
    elapsed: float = 0.0

    @property
    def value(self) -> Any:
        """The outputs as flytekit returns them: None, the single value, or a namedtuple for several."""
        return shape_outputs(self.output_names, self.outputs)


def _add_note(error: BaseException, note: str) -> None:
    if hasattr(error, "add_note"):  # Python >= 3.11
        error.add_note(note)


def _timeout_of(template: tasks_pb2.TaskTemplate) -> float | None:
    if template.HasField("metadata") and template.metadata.HasField("timeout"):
        seconds = template.metadata.timeout.seconds + template.metadata.timeout.nanos / 1e9
        return seconds if seconds > 0 else None
    return None


def _execution_metadata(template: tasks_pb2.TaskTemplate, execution_id: str) -> agent_pb2.TaskExecutionMetadata:
    """A TaskExecutionMetadata like Propeller's, for a synthetic local execution."""
    workflow_execution = identifier_pb2.WorkflowExecutionIdentifier(
        project=template.id.project, domain=template.id.domain, name=execution_id
    )
    task_execution_id = identifier_pb2.TaskExecutionIdentifier(
        task_id=template.id,
        node_execution_id=identifier_pb2.NodeExecutionIdentifier(node_id="n0", execution_id=workflow_execution),
        retry_attempt=0,
    )
    retries = template.metadata.retries.retries if template.HasField("metadata") else 0
    return agent_pb2.TaskExecutionMetadata(
        task_execution_id=task_execution_id,
        namespace=f"{template.id.project}-{template.id.domain}".strip("-") or "local",
        k8s_service_account="default",
        max_attempts=retries + 1,
        interruptible=template.metadata.interruptible if template.HasField("metadata") else False,
    )


def _from_author(tb: TracebackType | None) -> TracebackType | None:
    """The traceback from its first frame outside flyteconnect and asyncio: it then ends in the author's code."""
    start = tb
    while start is not None and start.tb_frame.f_code.co_filename.startswith(_OURS):
        start = start.tb_next
    return start or tb  # an error of flyteconnect itself keeps its whole traceback


_OURS = (os.path.dirname(os.path.dirname(__file__)), os.path.dirname(asyncio.__file__))


def _new_execution_id() -> str:
    # Flyte execution names: lowercase letters and digits, starting with a letter, at most 20 characters.
    return "l" + uuid.uuid4().hex[:19]


def _normalize(resource: Resource) -> Resource:
    """Phases Propeller cannot act on become failures, as they would under Propeller (no endless local polling)."""
    phase = resource.phase
    if phase is None or phase == Phase.UNDEFINED:
        resource.phase = Phase.RETRYABLE_FAILED
        resource.message = resource.message or "the connector returned phase UNDEFINED"
    elif phase not in Phase._value2member_map_:
        resource.phase = Phase.FAILED
        resource.message = f"unknown execution phase [{phase}]" + (f": {resource.message}" if resource.message else "")
    else:
        resource.phase = Phase(phase)
    return resource


class _Run:
    """One run: drives the backend, remembers the job handle, and deletes the job at most once."""

    def __init__(self, runner: LocalRunner, job: Job, state: RunState, progress: Progress) -> None:
        self.runner = runner
        self.job = job
        self.state = state
        self.progress = progress
        self.handle: Any = None
        self.resource: Resource | None = None
        self.sync: bool = False
        self._create: asyncio.Future[Any] | None = None
        self._deleted = False
        self.deleted = False
        """True once a delete call succeeded."""

    def _note(self, note: str) -> None:
        self.state.note = note
        self.progress.updated(self.state)

    def _observe(self, resource: Resource) -> None:
        self.resource = resource
        self.state.phase = int(resource.phase)
        self.state.message = resource.message or ""
        self.state.log_links = list(resource.log_links or [])
        self.state.note = ""
        self.progress.updated(self.state)

    @property
    def terminal(self) -> bool:
        return self.resource is not None and is_terminal_phase(self.resource.phase)

    async def _to_terminal(self) -> Resource:
        backend = self.runner.backend
        self.sync = await backend.is_sync(self.job.category)
        if self.sync:
            self._note("running (sync)")
            resource = _normalize(await backend.do(self.job))
            self._observe(resource)
            if not is_terminal_phase(resource.phase):
                raise ConnectorError(
                    f"sync connector for {self.job.category} returned non-terminal phase {Phase(resource.phase).name}"
                )
            return resource
        self._note("creating")
        self._create = asyncio.ensure_future(backend.create(self.job))
        # Shielded: if the run is cancelled mid-create, the create still completes so the job can be deleted.
        self.handle = await asyncio.shield(self._create)
        self._note("created")
        failures = 0
        for delay in self.runner.poll.delays():
            await asyncio.sleep(delay)
            try:
                resource = await backend.get(self.job, self.handle)
            except TransientError as e:
                failures += 1
                if failures > self.runner.max_poll_failures:
                    raise
                self._note(f"poll failed ({failures}/{self.runner.max_poll_failures}): {e}")
                continue
            failures = 0
            self._observe(_normalize(resource))
            if self.terminal:
                return resource
        raise AssertionError("unreachable: the poll schedule is infinite")

    async def drive(self, timeout: float | None) -> Resource:
        """Run to a terminal phase; on timeout, cancellation or error, delete the job (once) and re-raise."""
        inner = asyncio.ensure_future(self._to_terminal())
        try:
            done, _ = await asyncio.wait({inner}, timeout=timeout)
        except asyncio.CancelledError:
            await self._abandon(inner, "cancelled")
            raise
        if not done:
            await self._abandon(inner, "timed out")
            phase = self.resource.phase if self.resource is not None else Phase.UNDEFINED
            links = (self.resource.log_links or []) if self.resource is not None else []
            raise TaskTimeout(self.job.task_name, timeout or 0.0, phase, links, deleted=self.deleted)
        error = inner.exception() if not inner.cancelled() else None
        if error is None:
            return inner.result()
        if not self.terminal:
            await self._abandon(inner, "failed")
        raise error.with_traceback(_from_author(error.__traceback__))

    async def _abandon(self, inner: asyncio.Future[Any], why: str) -> None:
        if not inner.done():  # awaiting a failed one would graft this frame onto the error's traceback
            inner.cancel()
            with contextlib.suppress(BaseException):
                await inner
        if self.handle is None and self._create is not None:
            # The create was in flight: wait (bounded) for its handle, or the job would leak.
            await asyncio.wait({self._create}, timeout=self.runner.cleanup_timeout)
            if self._create.done() and not self._create.cancelled() and self._create.exception() is None:
                self.handle = self._create.result()
        if self.handle is not None and not self.terminal:
            await self.delete(why)

    async def delete(self, why: str) -> None:
        """Delete the job, at most once per run; failures are logged, never raised over the original error."""
        if self._deleted or self.handle is None:
            return
        self._deleted = True
        self._note(f"{why}: deleting the job")
        deleting = asyncio.ensure_future(self.runner.backend.delete(self.job, self.handle))
        try:
            # Shielded so that a second cancellation does not interrupt the delete half-way.
            await asyncio.wait_for(asyncio.shield(deleting), self.runner.cleanup_timeout)
        except BaseException as e:
            log.warning("task %s: deleting job %s failed: %r", self.job.task_name, self.job.execution_id, e)
            self._note(f"{why}: delete failed: {e!r}")
            if isinstance(e, asyncio.CancelledError):
                raise
        else:
            self.deleted = True
            self._note(f"{why}: job deleted")


class LocalRunner:
    """Runs connector tasks outside Flyte.

    ``backend`` is where tasks go: an ``InProcessBackend`` over ``registry`` (the process default registry when
    neither is given), or a remote backend (``flyteconnect.local.remote.connect("host:port")``). ``raw_prefix`` is
    where per-run output directories are made (``$FLYTECONNECT_RAW_PREFIX``, else a temporary directory);
    ``storage_options`` are passed to fsspec to read outputs.pb (e.g. an S3 endpoint). ``timeout`` overrides the
    task's own timeout. ``progress`` is ``"auto"``, ``"rich"``, ``"plain"``, ``"none"`` or a Progress object.
    """

    def __init__(
        self,
        registry: ConnectorRegistry | None = None,
        *,
        backend: Backend | None = None,
        raw_prefix: str | None = None,
        storage_options: Mapping[str, Any] | None = None,
        poll: PollSchedule | None = None,
        timeout: float | None = None,
        cleanup_timeout: float = 30.0,
        max_poll_failures: int = 5,
        progress: Progress | str | None = "auto",
    ) -> None:
        if registry is not None and backend is not None:
            raise ValueError("pass either a registry or a backend, not both")
        if timeout is not None and timeout <= 0:
            raise ValueError(f"timeout must be positive, got {timeout}")
        self.backend: Backend = backend if backend is not None else InProcessBackend(registry)
        self.raw_prefix = raw_prefix
        self.storage_options = dict(storage_options or {})
        self.poll = poll or PollSchedule()
        self.timeout = timeout
        self.cleanup_timeout = cleanup_timeout
        self.max_poll_failures = max_poll_failures
        self.progress = make_progress(progress)

    # -- inputs and outputs ------------------------------------------------------------------------------------------

    @staticmethod
    def convert_inputs(task: ExecutableTask, inputs: Mapping[str, Any]) -> literals_pb2.LiteralMap:
        """Check names against the task's inputs and convert the values with their declared types."""
        from flyteconnect.literals import to_literal_map

        declared = dict(task.input_types)
        unknown = sorted(set(inputs) - set(declared))
        if unknown:
            takes = ", ".join(declared) or "none"
            raise TypeError(f"task {task.name!r} got unexpected input(s) {', '.join(unknown)}; it takes: {takes}")
        missing = sorted(set(declared) - set(inputs))
        if missing:
            raise TypeError(f"task {task.name!r} is missing input(s) {', '.join(missing)}")
        try:
            return to_literal_map(dict(inputs), declared)
        except Exception as e:
            _add_note(e, f"while converting the inputs of task {task.name!r}")
            raise

    async def _outputs(self, task: ExecutableTask, job: Job, resource: Resource) -> literals_pb2.LiteralMap:
        from flyteconnect.literals import to_literal_map_proto

        declared = dict(task.output_types)
        if not declared:
            return literals_pb2.LiteralMap()
        if resource.outputs is not None:
            return to_literal_map_proto(resource.outputs, declared)
        return await asyncio.to_thread(read_outputs_pb, job.output_prefix, self.storage_options)

    # -- running -------------------------------------------------------------------------------------------------

    def _job(self, task: ExecutableTask, inputs: Mapping[str, Any]) -> Job:
        template = task.task_template()
        execution_id = _new_execution_id()
        output_prefix = join_uri(self.raw_prefix or default_raw_prefix(), execution_id)
        make_output_dir(output_prefix)
        return Job(
            task_name=task.name,
            template=template,
            inputs=self.convert_inputs(task, inputs),
            output_prefix=output_prefix,
            execution_metadata=_execution_metadata(template, execution_id),
            execution_id=execution_id,
        )

    async def arun_result(self, task: ExecutableTask, /, **inputs: Any) -> RunResult:
        """Run ``task`` with ``inputs`` and return the full RunResult (raises TaskFailed, TaskTimeout...)."""
        from flyteconnect.literals import literal_map_to_python

        job = self._job(task, inputs)
        state = RunState(task.name, job.execution_id, self.backend.describe())
        progress = self.progress
        run = _Run(self, job, state, progress)
        timeout = self.timeout if self.timeout is not None else _timeout_of(job.template)
        progress.started(state)
        error: BaseException | None = None
        try:
            try:
                resource = await run.drive(timeout)
            except (TaskTimeout, asyncio.CancelledError):
                raise
            except Exception as e:
                if not isinstance(e, TaskFailed):
                    _add_note(e, f"while running task {task.name!r} ({job.category}, {self.backend.describe()})")
                raise
            if resource.phase != Phase.SUCCEEDED:
                raise TaskFailed(
                    task.name, resource.phase, resource.message or "", resource.log_links or [], resource.custom_info
                )
            literals = await self._outputs(task, job, resource)
            names = list(task.output_types)
            missing = [n for n in names if n not in literals.literals]
            if missing:
                raise OutputsNotFound(f"task {task.name!r} succeeded without output(s) {', '.join(missing)}")
            outputs = literal_map_to_python(literals, dict(task.output_types), what="output")
            return RunResult(
                task_name=task.name,
                execution_id=job.execution_id,
                output_prefix=job.output_prefix,
                phase=resource.phase,
                message=resource.message or "",
                log_links=list(resource.log_links or []),
                custom_info=resource.custom_info,
                literals=literals,
                outputs={n: outputs[n] for n in names},
                output_names=names,
                elapsed=state.elapsed,
            )
        except BaseException as e:
            error = e
            raise
        finally:
            state.ended = time.monotonic()
            progress.finished(state, error)

    async def arun(self, task: ExecutableTask, /, **inputs: Any) -> Any:
        """Run ``task`` and return its outputs as flytekit does (None, the value, or a namedtuple)."""
        return (await self.arun_result(task, **inputs)).value

    def run_result(self, task: ExecutableTask, /, **inputs: Any) -> RunResult:
        """Synchronous ``arun_result``: works inside a running event loop too (on a helper thread)."""

        async def main() -> RunResult:
            try:
                return await self.arun_result(task, **inputs)
            finally:
                await self.backend.aclose()

        return run_sync(main, label=task.name)

    async def aclose(self) -> None:
        """Release the backend's connections (the sync ``run`` methods do this after each run)."""
        await self.backend.aclose()

    async def __aenter__(self) -> LocalRunner:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def run(self, task: ExecutableTask, /, **inputs: Any) -> Any:
        """Synchronous ``arun``: Ctrl-C deletes the job then raises KeyboardInterrupt; SIGTERM raises TaskCancelled."""
        return self.run_result(task, **inputs).value
