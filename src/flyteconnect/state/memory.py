"""``MemoryStore``: the default state store, bounded by entry count, for one process."""

from __future__ import annotations

import time
from collections.abc import Callable

from flyteconnect.memo import remember
from flyteconnect.state.base import DEFAULT_MEMORY_LIMIT, StateStore, _check_ttl

__all__ = ["MemoryStore"]


class MemoryStore(StateStore):
    """Entries in one dict, at most ``limit`` of them, each with an expiry instant.

    Bounded by the project's one memo rule (``flyteconnect.memo.remember``: the oldest entry goes first). A write
    moves its key to the newest end, so a job that is still polled outlives ones nobody asks about. Expired entries
    read as absent and are dropped when read or when they reach the oldest end. Its methods run on the event loop
    (they never await), which is what makes ``set_if_absent`` and ``compare_and_set`` atomic here.
    """

    def __init__(self, limit: int = DEFAULT_MEMORY_LIMIT, clock: Callable[[], float] = time.monotonic) -> None:
        if limit < 1:
            raise ValueError(f"MemoryStore limit must be >= 1, got {limit}")
        self.limit = limit
        self._clock = clock
        self._entries: dict[str, tuple[float, bytes]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def _live(self, key: str) -> bytes | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry[0] <= self._clock():
            del self._entries[key]
            return None
        return entry[1]

    def _put(self, key: str, value: bytes, ttl: float) -> None:
        _check_ttl(ttl)
        now = self._clock()
        self._entries.pop(key, None)
        oldest = next(iter(self._entries), None)
        if oldest is not None and self._entries[oldest][0] <= now:  # an expired oldest entry goes before a live one
            del self._entries[oldest]
        remember(self._entries, key, (now + ttl, value), self.limit)

    async def get(self, key: str) -> bytes | None:
        """The value under ``key``, or None."""
        return self._live(key)

    async def set(self, key: str, value: bytes, ttl: float) -> None:
        """Keep ``value`` under ``key`` for ``ttl`` seconds."""
        self._put(key, value, ttl)

    async def set_if_absent(self, key: str, value: bytes, ttl: float) -> bool:
        """Keep ``value`` only when ``key`` holds nothing live."""
        if self._live(key) is not None:
            return False
        self._put(key, value, ttl)
        return True

    async def get_or_set(self, key: str, value: bytes, ttl: float) -> bytes | None:
        """What ``key`` holds, or None after keeping ``value``."""
        found = self._live(key)
        if found is None:
            self._put(key, value, ttl)
        return found

    async def compare_and_set(self, key: str, expected: bytes, value: bytes, ttl: float) -> bool:
        """Replace the value only when it is ``expected``."""
        if self._live(key) != expected:
            return False
        self._put(key, value, ttl)
        return True

    async def delete(self, key: str) -> None:
        """Forget ``key``."""
        self._entries.pop(key, None)

    def describe(self) -> str:
        """``memory (limit N)``."""
        return f"memory (limit {self.limit})"
