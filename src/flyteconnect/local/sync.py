"""Run a coroutine from synchronous code: on a fresh loop in this thread, or on a helper thread when a loop is already
running here (Jupyter, async frameworks). Ctrl-C and SIGTERM cancel the coroutine (which then cleans up) instead of
killing the process; the previous signal handlers are always restored. Nothing here calls ``sys.exit``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import signal
import threading
from collections.abc import Callable, Coroutine
from types import FrameType
from typing import Any, TypeVar

from flyteconnect.local.errors import TaskCancelled
from flyteconnect.loops import close_loop_resources

__all__ = ["run_sync"]

T = TypeVar("T")

_SIGNALS = tuple(s for s in (getattr(signal, "SIGINT", None), getattr(signal, "SIGTERM", None)) if s is not None)


def run_sync(main: Callable[[], Coroutine[Any, Any, T]], *, label: str = "run") -> T:
    """Run ``main()`` to completion and return its result.

    On Ctrl-C the coroutine is cancelled and, after it has cleaned up, ``KeyboardInterrupt`` is raised; on SIGTERM,
    ``TaskCancelled``. A second Ctrl-C stops waiting for the clean-up.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return _run_here(main, label)
    return _run_on_thread(main)


# How long leftover tasks get to finish after being cancelled: a library task that swallows cancellation (a pool
# reconnecting in a loop) must not hang the caller forever.
FINISH_TIMEOUT = 5.0


def _finish_loop(loop: asyncio.AbstractEventLoop) -> None:
    try:
        loop.run_until_complete(close_loop_resources())
        pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
        for t in pending:
            t.cancel()
        if pending:
            loop.run_until_complete(asyncio.wait(pending, timeout=FINISH_TIMEOUT))
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.run_until_complete(loop.shutdown_default_executor())
    finally:
        loop.close()


def _run_here(main: Callable[[], Coroutine[Any, Any, T]], label: str) -> T:
    loop = asyncio.new_event_loop()
    received: list[int] = []
    task = loop.create_task(main())

    def on_signal(signum: int, frame: FrameType | None) -> None:
        if received and signum == signal.SIGINT:
            raise KeyboardInterrupt  # second Ctrl-C: stop waiting for the clean-up
        received.append(signum)
        loop.call_soon_threadsafe(task.cancel)

    previous: dict[int, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for sig in _SIGNALS:
            if signal.getsignal(sig) is not signal.SIG_IGN:  # respect a parent that asked us to ignore it (nohup)
                previous[sig] = signal.signal(sig, on_signal)
    try:
        try:
            return loop.run_until_complete(task)
        except asyncio.CancelledError:
            if not received:
                raise
            if received[0] == signal.SIGINT:
                raise KeyboardInterrupt from None
            raise TaskCancelled(label, signal.Signals(received[0]).name) from None
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        _finish_loop(loop)


def _run_on_thread(main: Callable[[], Coroutine[Any, Any, T]]) -> T:
    result: concurrent.futures.Future[T] = concurrent.futures.Future()
    ready = threading.Event()
    box: dict[str, Any] = {}

    def target() -> None:
        loop = asyncio.new_event_loop()
        task = loop.create_task(main())
        box["loop"], box["task"] = loop, task
        ready.set()
        try:
            result.set_result(loop.run_until_complete(task))
        except BaseException as e:  # handed to the caller's thread
            result.set_exception(e)
        finally:
            _finish_loop(loop)

    thread = threading.Thread(target=target, name="flyteconnect-run", daemon=True)
    thread.start()
    try:
        return result.result()
    except KeyboardInterrupt:
        # Ctrl-C reaches the main thread: cancel the run on its own loop and let it clean up before re-raising.
        ready.wait()
        box["loop"].call_soon_threadsafe(box["task"].cancel)
        try:
            result.exception()
        except KeyboardInterrupt:
            pass  # second Ctrl-C: stop waiting
        raise
