"""Errors of local execution: a task that ended badly, ran out of time, or was stopped by a signal."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from flyteconnect.connector import Phase
from flyteconnect.errors import FlyteConnectError

__all__ = ["OutputsNotFound", "TaskCancelled", "TaskFailed", "TaskTimeout"]


def _phase_name(phase: int) -> str:
    return Phase(phase).name if phase in Phase._value2member_map_ else str(phase)


def _links_text(log_links: Sequence[Any]) -> str:
    return "".join(f"\n  {getattr(link, 'name', '') or 'log'}: {getattr(link, 'uri', link)}" for link in log_links)


class TaskFailed(FlyteConnectError):
    """The task reached FAILED, ABORTED or RETRYABLE_FAILED; carries the phase, message and log links."""

    def __init__(
        self,
        task_name: str,
        phase: int,
        message: str = "",
        log_links: Sequence[Any] = (),
        custom_info: dict[str, Any] | None = None,
    ) -> None:
        self.task_name = task_name
        self.phase = phase
        self.message = message
        self.log_links = list(log_links)
        self.custom_info = custom_info
        text = f"task {task_name!r} ended in phase {_phase_name(phase)}"
        if message:
            text += f": {message}"
        super().__init__(text + _links_text(self.log_links))

    @property
    def retryable(self) -> bool:
        """True when the connector reported RETRYABLE_FAILED (running it again may succeed)."""
        return self.phase == Phase.RETRYABLE_FAILED


class TaskTimeout(FlyteConnectError, TimeoutError):
    """The task did not finish within its timeout; ``deleted`` tells whether its job was deleted."""

    def __init__(
        self,
        task_name: str,
        timeout: float,
        phase: int = 0,
        log_links: Sequence[Any] = (),
        deleted: bool = False,
    ) -> None:
        self.task_name = task_name
        self.timeout = timeout
        self.phase = phase
        self.log_links = list(log_links)
        self.deleted = deleted
        text = f"task {task_name!r} timed out after {timeout:g}s in phase {_phase_name(phase)}"
        if deleted:
            text += "; the job was deleted"
        super().__init__(text + _links_text(self.log_links))


class TaskCancelled(FlyteConnectError):
    """The run was stopped by a termination signal (SIGTERM), after its job was deleted (if it had one)."""

    def __init__(self, task_name: str, reason: str = "terminated") -> None:
        self.task_name = task_name
        self.reason = reason
        super().__init__(f"task {task_name!r} was cancelled ({reason})")


class OutputsNotFound(FlyteConnectError):
    """The task succeeded and declares outputs, but neither the Resource nor ``<output_prefix>/outputs.pb`` has them."""
