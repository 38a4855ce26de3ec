"""Clean-up hooks tied to an event loop.

Async clients (httpx clients, psycopg pools) belong to the loop that made them and must be closed on it before it
closes, or their background tasks keep the loop (and the process) from finishing. A connector registers a closer for
the running loop with ``on_loop_close``; whoever owns a loop (the server at shutdown, the local runner after each
synchronous run) awaits ``close_loop_resources()`` on it before closing it.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Awaitable, Callable

__all__ = ["close_loop_resources", "on_loop_close"]

log = logging.getLogger(__name__)

Closer = Callable[[], Awaitable[object]]

_closers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, list[Closer]] = weakref.WeakKeyDictionary()


def on_loop_close(closer: Closer) -> None:
    """Run ``closer()`` on the running loop when its owner closes it (once; later registrations run first)."""
    _closers.setdefault(asyncio.get_running_loop(), []).append(closer)


async def close_loop_resources(timeout: float = 10.0) -> None:
    """Await every closer registered for the running loop, newest first, each bounded by ``timeout`` seconds.

    A closer that fails or hangs is logged and skipped: shutting down must not be stopped by one bad client.
    """
    closers = _closers.pop(asyncio.get_running_loop(), [])
    for closer in reversed(closers):
        try:
            await asyncio.wait_for(closer(), timeout)
        except Exception as e:  # includes TimeoutError
            log.warning("closing a loop resource failed: %s: %s", type(e).__name__, e)
