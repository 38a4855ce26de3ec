"""Event-loop stall detection.

The loop stamps a heartbeat every ``threshold / 4`` seconds; a daemon thread checks the stamp. When the loop has not
beaten for ``threshold`` seconds it is stalled: the thread looks at the loop thread's Python stack for a frame of a
known connector method (code objects registered by the dispatcher) and reports who is blocking, once per stall. This
costs nothing per request: no wrappers around connector calls, only a timer callback a few times a second.
When the watchdog thread itself wakes up late, the whole process was starved of CPU (CFS throttling, an
overloaded node) and no stall is reported, so a connector is not blamed for what the machine did.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import CodeType, FrameType
from typing import Any

__all__ = ["LoopWatchdog", "Stall"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Stall:
    """One detected stall: how long so far, where the loop thread is, and the connector method found on its stack."""

    seconds: float
    location: str
    owner: Any
    """What the dispatcher registered for the blocking method's code object, or None if none is on the stack."""


class LoopWatchdog:
    """Watch one event loop; call ``on_stall(Stall)`` from the watchdog thread when it blocks beyond ``threshold``.

    ``log_resume=False`` leaves out the "resumed" log line; ``forgive_starvation=False`` reports stalls even when
    the watchdog itself woke late (a development tool that wants every blocking line, not a server's blame).
    """

    def __init__(
        self,
        threshold: float,
        on_stall: Callable[[Stall], None],
        owners: Callable[[], Mapping[CodeType, Any]] = dict,
        *,
        log_resume: bool = True,
        forgive_starvation: bool = True,
    ) -> None:
        if threshold <= 0:
            raise ValueError("the stall threshold must be positive")
        self.threshold = threshold
        self._interval = threshold / 4
        self._on_stall = on_stall
        self._owners = owners
        self._log_resume = log_resume
        self._forgive_starvation = forgive_starvation
        self._last = time.monotonic()
        self._stop = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start watching the running loop (call from the loop's thread)."""
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._last = time.monotonic()
        self._beat()
        self._thread = threading.Thread(target=self._watch, name="flyteconnect-watchdog", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread and the heartbeat."""
        self._stop.set()
        if self._timer is not None:
            self._timer.cancel()
        if self._thread is not None:
            self._thread.join(timeout=2)

    def _beat(self) -> None:
        self._last = time.monotonic()
        if not self._stop.is_set() and self._loop is not None:
            self._timer = self._loop.call_later(self._interval, self._beat)

    def _watch(self) -> None:
        reported = False
        stalled_since = 0.0
        while True:
            before = time.monotonic()
            if self._stop.wait(self._interval):
                return
            if self._loop is not None and self._loop.is_closed():
                return  # a loop closed without stop() (a local run's): nothing left to watch
            now = time.monotonic()
            if self._forgive_starvation and now - before - self._interval > self.threshold / 2:
                # This thread woke up late too: the whole process was starved of CPU (throttling, an overloaded
                # node), which is not a connector's fault. Look again once everyone has had a chance to run.
                continue
            last = self._last
            behind = now - last
            if behind < self.threshold:
                if reported and self._log_resume:
                    # From the last beat before the stall to the first one after it.
                    log.warning("event loop resumed: the stall lasted about %.2fs", last - stalled_since)
                reported = False
                continue
            if reported:
                continue
            reported = True
            stalled_since = last
            try:
                self._on_stall(self._inspect(behind))
            except Exception:  # a reporting bug must never kill the watchdog
                log.exception("watchdog stall callback failed")

    def _inspect(self, behind: float) -> Stall:
        frame: FrameType | None = sys._current_frames().get(self._loop_thread or 0)
        location = "unknown"
        if frame is not None:
            location = f"{frame.f_code.co_filename}:{frame.f_lineno} in {frame.f_code.co_name}"
        owners = self._owners()
        owner = None
        while frame is not None:
            found = owners.get(frame.f_code)
            if found is not None:
                owner = found
                break
            frame = frame.f_back
        return Stall(behind, location, owner)
