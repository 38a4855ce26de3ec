"""``Call``: one connector call as the pipeline and its policies see it."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from flyteconnect.connector import TaskCategory

if TYPE_CHECKING:
    from flyteconnect.server.dispatch import Entry
    from flyteconnect.server.pipeline.runner import Pipeline

__all__ = ["Call"]


class Call:
    """One request's call of one connector operation (built by the dispatcher; policies read it and note on it).

    Identity: ``operation``, ``entry`` (the connector), ``task_category``, ``resource_meta`` (the request's bytes;
    for create None until the connector answered, then the created job's encoded resource_meta; None for do),
    ``task_execution_id`` (create/do). Time: ``start`` (``time.monotonic()``), ``timeout`` (the caller's remaining
    seconds), ``bound`` and ``deadline`` (the pipeline's deadline stage). Result: ``outcome`` is the connector's own
    result once it answered (a ``Resource`` for get/do, the ``ResourceMeta`` for create).
    """

    __slots__ = ("bound", "convert", "kwargs", "notes", "outcome", "pipeline", "resource_meta", "start", "timeout")

    def __init__(
        self,
        pipeline: Pipeline,
        kwargs: dict[str, Any],
        resource_meta: bytes | None,
        convert: Callable[[Any], Any] | None,
        timeout: float | None,
        start: float,
        bound: float | None,
    ) -> None:
        self.pipeline = pipeline
        self.kwargs = kwargs
        """Keyword arguments for the connector method (``resource_meta`` is added decoded when the call runs)."""
        self.resource_meta = resource_meta
        self.convert = convert
        """The adapter's conversion of the checked result into its reply (None: the result itself)."""
        self.timeout = timeout
        self.start = start
        self.bound = bound
        """Seconds from ``start`` the connector may take (None: unbounded); a policy may shorten it in ``enter``."""
        self.outcome: Any = None
        self.notes: dict[Any, Any] | None = None
        """Per-call state a policy keeps between its hooks (``call.note(self, value)``); None until one does."""

    @property
    def operation(self) -> str:
        """``create``, ``get``, ``delete``, ``do``, ``get_metrics`` or ``get_logs``."""
        return self.pipeline.operation

    @property
    def entry(self) -> Entry:
        """The served connector (``entry.connector``, ``entry.name``, ``entry.category``)."""
        return self.pipeline.entry

    @property
    def task_category(self) -> TaskCategory:
        """The task category the request addressed."""
        return self.pipeline.entry.category

    @property
    def deadline(self) -> float | None:
        """The ``time.monotonic()`` instant the call's bound passes, or None."""
        return None if self.bound is None else self.start + self.bound

    @property
    def task_execution_id(self) -> Any:
        """The request's ``TaskExecutionIdentifier`` proto (create and do), or None (parsed only when asked for)."""
        metadata = self.kwargs.get("task_execution_metadata")
        return None if metadata is None else metadata.task_execution_id

    def answer(self, result: Any) -> Any:
        """The reply for ``result`` as if the connector had returned it (a policy answering from state): checked and
        converted like the connector's own result, but not recorded as ``outcome``."""
        return self.pipeline.check(self, result)

    def note(self, key: Any, value: Any) -> None:
        """Keep ``value`` under ``key`` (usually the policy itself) for this call."""
        if self.notes is None:
            self.notes = {}
        self.notes[key] = value

    def noted(self, key: Any, default: Any = None) -> Any:
        """What ``note`` kept under ``key``, or ``default``."""
        return default if self.notes is None else self.notes.get(key, default)
