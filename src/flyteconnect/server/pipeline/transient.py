"""Transient failures of ``get``: retry within the deadline, else answer the last phase seen instead of an error.

Propeller fails a task after 5 failed GetTask calls over its whole life, so a connector's short outage must not
surface as errors. ``TransientGet`` (a ``recover`` hook) retries a ``TransientError`` or a timeout with exponential
backoff while the deadline allows (``transient_retries``); if it still fails the caller gets a normal answer: the last
phase this server saw for that resource_meta (``PhaseMemory``) or RUNNING, with a message naming the problem. After
``transient_max_consecutive`` such answers in a row for the same job, the answer is RETRYABLE_FAILED so Propeller
retries the task. ``PhaseMemory`` (an ``exit`` hook) remembers phases only for connectors that had a transient
failure since start: healthy connectors pay nothing for it. ``transient_retries=-1`` turns this off.
"""

from __future__ import annotations

import asyncio
import logging
import time

from flyteconnect.connector import Phase, Resource
from flyteconnect.errors import TransientError
from flyteconnect.memo import remember
from flyteconnect.server.errors import CallTimeout, for_callers
from flyteconnect.server.metrics import ServerMetrics
from flyteconnect.server.pipeline.call import Call
from flyteconnect.server.pipeline.policy import Policy, PolicyContext, Proceed
from flyteconnect.server.pipeline.results import TERMINAL

__all__ = ["PhaseMemory", "PhaseStore", "TransientGet", "phase_memory", "transient_get"]

log = logging.getLogger("flyteconnect.server")
_now = time.monotonic


class PhaseStore:
    """Last phase seen and consecutive transient failures per resource_meta (bounded: the oldest job goes first)."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._data: dict[bytes, tuple[int, int]] = {}

    def seen(self, key: bytes, phase: int) -> None:
        """The connector answered ``phase`` for job ``key``: its failure streak ends."""
        self._data.pop(key, None)  # re-inserted: the most recently polled job is the last to be forgotten
        remember(self._data, key, (phase, 0), self._size)

    def failed(self, key: bytes) -> tuple[int | None, int]:
        """Record a transient failure; returns (last phase or None, consecutive failures so far)."""
        phase, count = self._data.pop(key, (0, 0))
        remember(self._data, key, (phase, count + 1), self._size)
        return (phase or None), count + 1


class PhaseMemory(Policy):
    """Remembers each job's last phase; dormant until this connector's first transient failure wakes it."""

    __slots__ = ("dormant", "store")

    def __init__(self, store: PhaseStore) -> None:
        self.store = store
        self.dormant = True

    def exit(self, call: Call, error: BaseException | None) -> None:
        """Note the phase the connector answered (not a made-up transient answer: that is no ``outcome``)."""
        if error is None and call.outcome is not None and call.resource_meta is not None:
            self.store.seen(call.resource_meta, int(call.outcome.phase))


class TransientGet(Policy):
    """Retries transient get failures with backoff, then answers from ``PhaseMemory`` (see the module docstring)."""

    __slots__ = ("backoff", "max_consecutive", "memory", "metrics", "retries")

    def __init__(
        self, memory: PhaseMemory, retries: int, backoff: float, max_consecutive: int, metrics: ServerMetrics
    ) -> None:
        self.memory = memory
        self.retries = retries
        self.backoff = backoff
        self.max_consecutive = max_consecutive
        self.metrics = metrics

    async def recover(self, call: Call, error: Exception, proceed: Proceed) -> object:
        """Retry while the deadline allows, else answer the last phase seen (or RETRYABLE_FAILED after too many)."""
        if not isinstance(error, (TransientError, CallTimeout)) or call.resource_meta is None:
            raise error
        if self.memory.dormant:  # this connector's first transient failure: from now on its phases are remembered
            call.pipeline.wake(self.memory)
        entry = call.entry
        until = call.deadline
        attempt = 0
        while True:
            attempt += 1
            backoff = self.backoff * (2 ** (attempt - 1))
            left = None if until is None else until - _now()
            # Another attempt only if it can still finish in time (the backoff plus as long again to run).
            if attempt > self.retries or (left is not None and left <= 2 * backoff):
                return call.answer(self._answer(call, error))
            self.metrics.transient_retries.labels(entry.category.name, "get").inc()
            log.info("%s get: transient failure, retrying in %.2fs: %s", entry.label, backoff, error)
            await asyncio.sleep(backoff)
            try:
                return await proceed(call)
            except (TransientError, CallTimeout) as e:
                error = e

    def _answer(self, call: Call, error: Exception) -> Resource:
        entry = call.entry
        assert call.resource_meta is not None
        last, consecutive = self.memory.store.failed(call.resource_meta)
        self.metrics.transient_fallbacks.labels(entry.category.name).inc()
        what = "timed out" if isinstance(error, CallTimeout) else "is temporarily unavailable"
        reason = " ".join(for_callers(str(error)).split())[:300]  # the caller sees it: no server paths, no secrets
        if consecutive >= self.max_consecutive:
            log.warning("%s get: giving up after %d transient failures: %s", entry.label, consecutive, reason)
            return Resource(
                phase=Phase.RETRYABLE_FAILED,
                message=f"{entry.name} {what} for {consecutive} consecutive status checks: {reason}",
            )
        log.warning("%s get: transient failure %d, answering the last phase: %s", entry.label, consecutive, reason)
        phase = last if last is not None and last not in TERMINAL else int(Phase.RUNNING)
        return Resource(
            phase=phase,
            message=f"status unknown, {entry.name} {what} ({consecutive} in a row); will check again: {reason}",
        )


_STORE = "phases"


def phase_memory(ctx: PolicyContext) -> PhaseMemory | None:
    """Factory: on ``get`` when the transient policy is on; one store shared by all connectors."""
    if ctx.operation != "get" or ctx.config.transient_retries < 0:
        return None
    store = ctx.shared.get(_STORE)
    if store is None:
        store = ctx.shared[_STORE] = PhaseStore(ctx.config.phase_cache_size)
    return PhaseMemory(store)


def transient_get(ctx: PolicyContext) -> TransientGet | None:
    """Factory: on ``get`` unless ``transient_retries`` is -1; answers from the ``phase_memory`` policy's store."""
    if ctx.operation != "get" or ctx.config.transient_retries < 0:
        return None
    memory = ctx.built(PhaseMemory)
    if memory is None:
        raise ValueError("the transient_get policy needs the phase_memory policy before it")
    cfg = ctx.config
    return TransientGet(
        memory, cfg.transient_retries, cfg.transient_backoff, cfg.transient_max_consecutive, ctx.metrics
    )
