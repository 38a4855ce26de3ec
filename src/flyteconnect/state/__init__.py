"""Shared state: what must outlive one call (poll pacing, idempotency records, callback results).

``StateStore`` is the interface; ``MemoryStore`` (bounded, one process) is the default and ``RedisStore`` (the
``redis`` package's asyncio client, extra ``flyteconnect[redis]``) lets replicas agree. ``open_store(url)`` picks
one from a URL: ``memory://`` (optionally ``?limit=N``) or ``redis://`` / ``rediss://`` / ``unix://``::

    store = open_store("redis://127.0.0.1:6379/0")
    if await store.set_if_absent("create:exec-1", b"pending", ttl=600):
        ...  # this caller owns the record
    await store.close()
"""

from __future__ import annotations

from flyteconnect.state.base import StateStore, open_store
from flyteconnect.state.memory import MemoryStore

__all__ = ["MemoryStore", "RedisStore", "StateStore", "open_store"]


def __getattr__(name: str) -> object:
    if name == "RedisStore":  # its module imports nothing heavy, but keep `redis` out of reach until asked
        from flyteconnect.state.redis import RedisStore

        return RedisStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
