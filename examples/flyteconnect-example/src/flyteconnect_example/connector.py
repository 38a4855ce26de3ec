"""``TimerConnector``: an async connector whose "external job" is a timer, to show the moving parts.

What to copy from it:

- **Everything needed to continue is in the metadata.** ``create`` stores when the job started and how long it runs;
  ``get`` needs nothing else, so any server replica (or a restarted one) can answer any poll.
- **``create`` is quick and idempotent**: it starts the job and returns at once; polling is ``get``'s job.
- **Bad input is an error of the right kind**: ``InvalidRequest`` (gRPC ``INVALID_ARGUMENT``), raised before anything
  starts. A real connector raises ``TransientError`` when its service is briefly unavailable.
- **``async def`` only for non-blocking code.** Blocking client libraries go in plain ``def`` methods, which the
  server runs on its worker threads.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, ClassVar

from flyteconnect import AsyncConnectorBase, Phase, Resource, ResourceMeta
from flyteconnect.errors import InvalidRequest
from flyteconnect.models import LiteralMap, TaskExecutionMetadata, TaskTemplate

__all__ = ["TASK_TYPE", "TimerConnector", "TimerMeta"]

TASK_TYPE = "example_timer"
MAX_SECONDS = 24 * 3600


@dataclass
class TimerMeta(ResourceMeta):
    """The job handle Propeller stores and sends back with every poll (JSON on the wire)."""

    started_at: float
    seconds: float
    message: str


class TimerConnector(AsyncConnectorBase[TimerMeta]):
    """Runs a "job" that finishes ``seconds`` after it started and then returns ``message`` and the elapsed time."""

    name: ClassVar[str] = "Example Timer"
    task_type_name = TASK_TYPE
    metadata_type = TimerMeta

    async def create(
        self,
        task_template: TaskTemplate,
        output_prefix: str,
        inputs: LiteralMap | None = None,
        task_execution_metadata: TaskExecutionMetadata | None = None,
        **kwargs: Any,
    ) -> TimerMeta:
        """Start the timer; ``custom.default_seconds`` applies when the ``seconds`` input is not given."""
        values = inputs.to_python() if inputs is not None else {}
        seconds = values.get("seconds", task_template.custom.get("default_seconds", 1.0))
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not 0 <= seconds <= MAX_SECONDS:
            raise InvalidRequest(f"seconds must be a number between 0 and {MAX_SECONDS}, got {seconds!r}")
        return TimerMeta(started_at=time.time(), seconds=float(seconds), message=str(values.get("message", "")))

    async def get(self, resource_meta: TimerMeta, **kwargs: Any) -> Resource:
        """RUNNING (with the time left) until the timer has run out, then SUCCEEDED with the outputs."""
        elapsed = time.time() - resource_meta.started_at
        if elapsed < resource_meta.seconds:
            return Resource(phase=Phase.RUNNING, message=f"{resource_meta.seconds - elapsed:.1f}s left")
        return Resource(
            phase=Phase.SUCCEEDED,
            message="timer done",
            outputs={"message": resource_meta.message, "elapsed": round(elapsed, 3)},
        )

    async def delete(self, resource_meta: TimerMeta, **kwargs: Any) -> None:
        """Nothing to cancel: the timer lives only in the metadata. Deleting must always succeed."""
        return None
