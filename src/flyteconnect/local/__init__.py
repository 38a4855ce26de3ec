"""Local execution of connector tasks: ConnectorTask, the executor mixins and the runner (in-process or remote)."""

from __future__ import annotations

from flyteconnect.local.backend import Backend, InProcessBackend, Job
from flyteconnect.local.errors import OutputsNotFound, TaskCancelled, TaskFailed, TaskTimeout
from flyteconnect.local.mixins import AsyncConnectorExecutorMixin, SyncConnectorExecutorMixin
from flyteconnect.local.progress import NullProgress, PlainProgress, Progress, RichProgress, RunState
from flyteconnect.local.runner import ExecutableTask, LocalRunner, PollSchedule, RunResult
from flyteconnect.local.task import ConnectorTask

__all__ = [
    "AsyncConnectorExecutorMixin",
    "Backend",
    "ConnectorTask",
    "ExecutableTask",
    "InProcessBackend",
    "Job",
    "LocalRunner",
    "NullProgress",
    "OutputsNotFound",
    "PlainProgress",
    "PollSchedule",
    "Progress",
    "RichProgress",
    "RunResult",
    "RunState",
    "SyncConnectorExecutorMixin",
    "TaskCancelled",
    "TaskFailed",
    "TaskTimeout",
]
