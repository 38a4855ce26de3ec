"""What the testing kit returns: every call made, and the outcome Propeller would conclude from them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from flyteconnect.connector import Phase

__all__ = ["Call", "TaskResult", "propeller_status"]

# Propeller's error codes (flyteplugins webapi/connector): the default for failed jobs, and the poll give-up code.
TASK_FAILED = "TaskFailedWithError"
POLL_GIVE_UP = "AutoRefreshCacheFailed"

# flyteidl.admin.State (deprecated) values, read only when phase is UNDEFINED.
_RETRYABLE_FAILURE, _PERMANENT_FAILURE, _PENDING, _RUNNING, _SUCCEEDED = 0, 1, 2, 3, 4


@dataclass(frozen=True)
class Call:
    """One call the kit made: an RPC (``"CreateTask"``, ``"GetTask"``...) or, in-process, a connector method.

    ``code`` is ``"OK"`` or the gRPC status name (``"NOT_FOUND"``); in-process, the exception's class name.
    """

    method: str
    request: Any = None
    response: Any = None
    code: str = "OK"
    details: str = ""

    @property
    def ok(self) -> bool:
        """True when the call succeeded."""
        return self.code == "OK"


@dataclass
class TaskResult:
    """The outcome of one task attempt, as Propeller would see it, plus everything that was exchanged.

    ``phase`` is the phase Propeller ends the attempt in (SUCCEEDED, FAILED, RETRYABLE_FAILED, ABORTED, or the last
    non-terminal phase when polling gave up after a resource was seen). ``outputs`` holds Python values (empty unless
    SUCCEEDED). ``error_code`` is Propeller's code for a failure (``agent_error.code`` on the sync path, else
    ``TaskFailedWithError``; ``AutoRefreshCacheFailed`` when GetTask failed too often). ``resource`` is the last raw
    ``Resource`` proto received and ``calls`` every call made, in order.
    """

    phase: Phase
    message: str = ""
    outputs: dict[str, Any] = field(default_factory=dict)
    log_links: list[Any] = field(default_factory=list)
    custom_info: dict[str, Any] = field(default_factory=dict)
    error_code: str | None = None
    resource: Any = None
    resource_meta: bytes | None = None
    output_prefix: str = ""
    calls: list[Call] = field(default_factory=list)

    @property
    def succeeded(self) -> bool:
        """True when the attempt succeeded."""
        return self.phase == Phase.SUCCEEDED

    @property
    def retryable(self) -> bool:
        """True when Propeller would retry the task (a retryable failure consumes one of its retries)."""
        return self.phase == Phase.RETRYABLE_FAILED

    def calls_to(self, method: str) -> list[Call]:
        """The calls made to ``method`` (e.g. ``"DeleteTask"`` or, in-process, ``"delete"``), in order."""
        return [c for c in self.calls if c.method == method]

    def count(self, method: str) -> int:
        """How many calls were made to ``method``."""
        return sum(1 for c in self.calls if c.method == method)

    def assert_succeeded(self) -> None:
        """Raise AssertionError describing the failure unless the attempt succeeded."""
        if not self.succeeded:
            raise AssertionError(
                f"task ended {self.phase.name}"
                + (f" [{self.error_code}]" if self.error_code else "")
                + (f": {self.message}" if self.message else "")
                + f" after calls {[f'{c.method}:{c.code}' for c in self.calls]}"
            )

    def __repr__(self) -> str:
        calls = ", ".join(f"{c.method}{'' if c.ok else ':' + c.code}" for c in self.calls)
        return f"TaskResult({self.phase.name}, message={self.message!r}, outputs={self.outputs!r}, calls=[{calls}])"


@dataclass(frozen=True)
class Status:
    """Propeller's reading of one Resource: the phase it acts on and, for failures, message and code."""

    phase: Phase
    message: str
    error_code: str | None = None

    @property
    def terminal(self) -> bool:
        """True when the attempt ends here (Propeller stops polling and evaluates the outcome)."""
        return self.phase in (Phase.SUCCEEDED, Phase.FAILED, Phase.RETRYABLE_FAILED, Phase.ABORTED)


def propeller_status(phase: int, state: int, message: str, agent_error_code: str = "") -> Status:
    """Map a Resource's phase (and, when phase is UNDEFINED, its deprecated state) as Propeller v1.16.8 does.

    FAILED and ABORTED are permanent failures, RETRYABLE_FAILED a retryable one; UNDEFINED falls back to ``state``,
    whose zero value is RETRYABLE_FAILURE, so an unset phase fails the attempt; an unknown phase is a failure.
    """
    code = agent_error_code or TASK_FAILED
    if phase == Phase.UNDEFINED:
        if state == _PENDING:
            return Status(Phase.INITIALIZING, message)
        if state == _RUNNING:
            return Status(Phase.RUNNING, message)
        if state == _SUCCEEDED:
            return Status(Phase.SUCCEEDED, message)
        if state == _PERMANENT_FAILURE:
            return Status(Phase.FAILED, f"failed to run the job.\n{message}", code)
        return Status(Phase.RETRYABLE_FAILED, f"failed to run the job.\n{message}", code)
    if phase in (Phase.QUEUED, Phase.WAITING_FOR_RESOURCES, Phase.INITIALIZING, Phase.RUNNING, Phase.SUCCEEDED):
        return Status(Phase(phase), message)
    if phase == Phase.ABORTED:
        return Status(Phase.ABORTED, "failed to run the job with aborted phase.", code)
    if phase == Phase.FAILED:
        return Status(Phase.FAILED, f"failed to run the job: {message}", code)
    if phase == Phase.RETRYABLE_FAILED:
        return Status(Phase.RETRYABLE_FAILED, f"failed to run the job: {message}", code)
    return Status(Phase.FAILED, f"unknown execution phase [{phase}]", "UnknownPhase")


def python_outputs(literal_map: Any, type_hints: Mapping[str, Any] | None) -> dict[str, Any]:
    """A ``flyteidl.core.LiteralMap`` as Python values, typed where the task declares types, inferred elsewhere."""
    from flyteconnect.literals import literal_map_to_python

    hints = {k: v for k, v in (type_hints or {}).items() if k in literal_map.literals and v is not None}
    return literal_map_to_python(literal_map, hints or None)
