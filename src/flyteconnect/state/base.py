"""The state store interface and ``open_store``, the one place a store is chosen from a URL."""

from __future__ import annotations

import abc
from urllib.parse import parse_qs, urlsplit

__all__ = ["DEFAULT_MEMORY_LIMIT", "StateStore", "open_store"]

DEFAULT_MEMORY_LIMIT = 100_000
"""Entries a ``MemoryStore`` keeps by default (about 10,000 jobs with room for their records)."""


class StateStore(abc.ABC):
    """Async key -> bytes store with a time to live on every entry, shared by a server's policies.

    Every write takes ``ttl`` (seconds, > 0): nothing lives forever, whichever store holds it. Keys are short text
    chosen by the policies (``<purpose>:<job digest>``); a store may add its own prefix. ``set_if_absent`` and
    ``compare_and_set`` are atomic across everyone sharing the store (idempotency records and first-result-wins
    callbacks rely on that).
    """

    @abc.abstractmethod
    async def get(self, key: str) -> bytes | None:
        """The value under ``key``, or None when absent or expired."""

    @abc.abstractmethod
    async def set(self, key: str, value: bytes, ttl: float) -> None:
        """Keep ``value`` under ``key`` for ``ttl`` seconds, replacing what was there."""

    @abc.abstractmethod
    async def set_if_absent(self, key: str, value: bytes, ttl: float) -> bool:
        """Keep ``value`` under ``key`` for ``ttl`` seconds only when nothing live is there; True when it was kept."""

    @abc.abstractmethod
    async def get_or_set(self, key: str, value: bytes, ttl: float) -> bytes | None:
        """What ``key`` holds, or, when nothing live is there, None after keeping ``value`` for ``ttl`` seconds: a
        claim and a read in one step."""

    @abc.abstractmethod
    async def compare_and_set(self, key: str, expected: bytes, value: bytes, ttl: float) -> bool:
        """Replace the value under ``key`` with ``value`` only when it is ``expected``; True when replaced."""

    @abc.abstractmethod
    async def delete(self, key: str) -> None:
        """Forget ``key`` (no error when absent)."""

    async def ping(self) -> None:
        """Raise when the store cannot be reached (the server checks this before it starts serving)."""
        return None  # an in-process store is always there

    async def close(self) -> None:
        """Release connections (the store is not used afterwards)."""
        return None  # nothing to release in-process

    @property
    def shared(self) -> bool:
        """True when other processes may read what this store holds (replicas must then agree on keys)."""
        return False

    def describe(self) -> str:
        """A short description for logs (never a password)."""
        return type(self).__name__


def _check_ttl(ttl: float) -> None:
    if not ttl > 0:
        raise ValueError(f"ttl must be > 0 seconds, got {ttl!r}")


def open_store(url: str | None) -> StateStore:
    """The store for ``url``: None or ``memory://[?limit=N]`` a ``MemoryStore``, ``redis://``, ``rediss://`` or
    ``unix://`` a ``RedisStore`` (``?prefix=NAME:`` sets its key prefix). Raises ValueError for anything else."""
    from flyteconnect.state.memory import MemoryStore

    if url is None or url == "memory://" or url.startswith("memory://?"):
        query = parse_qs(urlsplit(url or "").query)
        try:
            limit = int(query.get("limit", [DEFAULT_MEMORY_LIMIT])[0])
        except ValueError:
            raise ValueError(f"state store {url!r}: limit must be an integer") from None
        return MemoryStore(limit)
    scheme = urlsplit(url).scheme
    if scheme in ("redis", "rediss", "unix"):
        from flyteconnect.state.redis import RedisStore

        return RedisStore(url)
    raise ValueError(f"unknown state store URL scheme {scheme!r}: use memory:// or redis://HOST:PORT/DB")
