"""Execution strategies: how a pipeline runs its connector method, decided once when the pipeline is built.

- ``OnLoop``: an ``async def`` method, awaited on the serving loop (the usual case).
- ``OnPool``: a ``def`` method, run on the server's thread pool with the caller's contextvars; the result is checked
  and converted on the worker thread too (a big reply is not built on the loop).
- ``Quarantined``: an ``async def`` method the watchdog caught blocking the loop, from then on run on a separate
  loop thread (``SideLoop``) so it cannot stall the other connectors again.
- ``Refuse``: the connector has no such method (UNIMPLEMENTED, or FAILED_PRECONDITION for the wrong kind).

A strategy's ``start(kwargs, finish)`` returns the awaitable of the running method; the pipeline bounds the await
and, when ``finish_on_loop``, checks and converts the result afterwards (else the strategy ran ``finish`` itself).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import sys
import threading
from collections.abc import Awaitable, Callable
from typing import Any

from flyteconnect.connector import ConnectorMethod

__all__ = ["OnLoop", "OnPool", "Quarantined", "Refuse", "SideLoop", "Strategy"]


class Strategy:
    """How one connector method runs."""

    __slots__ = ()
    name = "strategy"
    finish_on_loop = True
    """Whether the pipeline checks and converts the result after the await (else ``start`` did it)."""

    def start(self, kwargs: dict[str, Any], finish: Callable[[Any], Any]) -> Awaitable[Any]:
        """Start the method with ``kwargs``; the awaitable gives its result."""
        raise NotImplementedError


class OnLoop(Strategy):
    """``async def``: awaited on the serving loop."""

    __slots__ = ("func",)
    name = "loop"

    def __init__(self, method: ConnectorMethod) -> None:
        self.func = method.func

    def start(self, kwargs: dict[str, Any], finish: Callable[[Any], Any]) -> Awaitable[Any]:
        """The method's coroutine."""
        return self.func(**kwargs)  # type: ignore[no-any-return]


def _sync_call(func: Callable[..., Any], kwargs: dict[str, Any], finish: Callable[[Any], Any]) -> Any:
    return finish(func(**kwargs))


class OnPool(Strategy):
    """``def``: run on the server's thread pool, result checked and converted there."""

    __slots__ = ("executor", "func")
    name = "pool"
    finish_on_loop = False

    def __init__(self, method: ConnectorMethod, executor: concurrent.futures.Executor) -> None:
        self.func = method.func
        self.executor = executor

    def start(self, kwargs: dict[str, Any], finish: Callable[[Any], Any]) -> Awaitable[Any]:
        """A future of the worker thread's checked result."""
        ctx = contextvars.copy_context()
        loop = asyncio.get_running_loop()
        return loop.run_in_executor(self.executor, ctx.run, _sync_call, self.func, kwargs, finish)


class Quarantined(Strategy):
    """``async def`` caught blocking the loop: run on the side loop thread."""

    __slots__ = ("func", "side")
    name = "quarantine"

    def __init__(self, method: ConnectorMethod, side: Callable[[], SideLoop]) -> None:
        self.func = method.func
        self.side = side

    def start(self, kwargs: dict[str, Any], finish: Callable[[Any], Any]) -> Awaitable[Any]:
        """A future of the coroutine running on the side loop."""
        return asyncio.wrap_future(self.side().submit(self.func(**kwargs), contextvars.copy_context()))


class Refuse(Strategy):
    """The connector has no such method: every call fails with ``error()``."""

    __slots__ = ("error",)
    name = "refuse"

    def __init__(self, error: Callable[[], Exception]) -> None:
        self.error = error

    def start(self, kwargs: dict[str, Any], finish: Callable[[Any], Any]) -> Awaitable[Any]:
        """Raise the error."""
        raise self.error()


class SideLoop:
    """An event loop on its own thread, for async methods that were caught blocking the main loop."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="flyteconnect-quarantine", daemon=True)
        self._thread.start()

    def submit(self, coro: Any, ctx: contextvars.Context) -> concurrent.futures.Future[Any]:
        """Run ``coro`` on the side loop in ``ctx``; cancelling the future cancels it."""
        out: concurrent.futures.Future[Any] = concurrent.futures.Future()

        def start() -> None:
            if sys.version_info >= (3, 11):
                task = self.loop.create_task(coro, context=ctx)
            else:  # pragma: no cover
                task = self.loop.create_task(coro)

            def done(t: asyncio.Task[Any]) -> None:
                if t.cancelled():
                    out.cancel()
                elif t.exception() is not None:
                    out.set_exception(t.exception())  # type: ignore[arg-type]
                else:
                    out.set_result(t.result())

            task.add_done_callback(done)
            out.add_done_callback(lambda f: self.loop.call_soon_threadsafe(task.cancel) if f.cancelled() else None)

        self.loop.call_soon_threadsafe(start)
        return out

    def close(self) -> None:
        """Stop the loop and its thread."""
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=2)
        if not self._thread.is_alive():
            self.loop.close()
