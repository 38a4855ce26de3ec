"""Bounded memos: the one eviction rule the hot-path memos share (templates, Structs, handles, polls)."""

from __future__ import annotations

from typing import TypeVar

__all__ = ["remember"]

K = TypeVar("K")
V = TypeVar("V")


def remember(memo: dict[K, V], key: K, value: V, limit: int) -> V:
    """Keep ``value`` under ``key`` in ``memo``, first forgetting the oldest entry if ``memo`` holds ``limit``.

    Returns ``value``. Dicts keep insertion order, so the first key is the oldest. Memos may be shared by threads
    (a ``def`` connector decodes on a worker thread): an eviction that loses a race is skipped, never an error.
    """
    if len(memo) >= limit:
        try:
            del memo[next(iter(memo))]
        except (StopIteration, RuntimeError, KeyError):  # emptied or changed by another thread meanwhile
            pass
    memo[key] = value
    return value
