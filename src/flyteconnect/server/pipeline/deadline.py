"""The one coarse timer every bound in the server runs on.

A pipeline bounds each call by ``min(the caller's remaining deadline minus a margin, the connector's timeout)``
(``Pipeline.bound``); ``Deadlines`` enforces bounds with one timer for the whole server instead of a heap timer per
call, and ``DeadlineScope`` bounds an adapter's own awaits (reading a stream) on the same timer.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable
from typing import Any

__all__ = ["DeadlineScope", "Deadlines"]

_now = time.monotonic
_current_task = asyncio.current_task


class Deadlines:
    """Bounds awaits with one coarse timer instead of a timer per call.

    ``asyncio.timeout`` schedules and cancels a heap timer per call; here a call only enters ``calls`` (task ->
    ``time.monotonic()`` deadline; the pipeline writes it directly), and one callback every ``tick`` seconds cancels
    the tasks whose bound passed (so bounds are up to ``tick`` late).
    """

    def __init__(self, tick: float = 0.05) -> None:
        self._tick = tick
        self.calls: dict[asyncio.Task[Any], float] = {}
        self.fired: set[asyncio.Task[Any]] = set()
        self.timer: asyncio.TimerHandle | None = None

    def arm(self) -> None:
        """Start the checking timer (the caller saw ``timer is None`` after adding a call)."""
        self.timer = asyncio.get_running_loop().call_later(self._tick, self._check)

    def _check(self) -> None:
        now = time.monotonic()
        expired = [task for task, when in self.calls.items() if when <= now]
        for task in expired:
            del self.calls[task]
            self.fired.add(task)
            task.cancel()
        self.timer = None
        if self.calls:
            self.arm()

    def claim(self, task: asyncio.Task[Any]) -> bool:
        """Whether this timer cancelled ``task``; if so, take that cancellation back so the task can go on."""
        if task not in self.fired:
            return False
        self.fired.discard(task)
        if sys.version_info >= (3, 11):
            task.uncancel()
        return True

    def close(self) -> None:
        """Stop the timer (the server is shutting down)."""
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None


class DeadlineScope:
    """``with``: the current task's awaits inside the block are bounded by ``Deadlines``; ``error()`` is raised when
    the bound passes (TimeoutError by default)."""

    __slots__ = ("_bound", "_deadlines", "_error", "_task")

    def __init__(
        self, deadlines: Deadlines, bound: float | None, error: Callable[[], BaseException] = TimeoutError
    ) -> None:
        self._deadlines = deadlines
        self._bound = bound
        self._error = error
        self._task: asyncio.Task[Any] | None = None

    def __enter__(self) -> None:
        if self._bound is None:
            return
        self._task = task = _current_task()
        deadlines = self._deadlines
        deadlines.calls[task] = _now() + self._bound  # type: ignore[index]
        if deadlines.timer is None:
            deadlines.arm()

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None, tb: Any) -> None:
        task = self._task
        if task is None:
            return
        deadlines = self._deadlines
        deadlines.calls.pop(task, None)
        if et is asyncio.CancelledError and deadlines.claim(task):
            raise self._error() from None
