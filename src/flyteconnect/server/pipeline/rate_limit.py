"""Rate limit and concurrency cap on a connector's calls to its external system (issue 19 item 2).

One ``Limiter`` per connector, shared by its ``create``, ``get`` and ``delete``: a token bucket (``rate`` calls per
second, bursts of ``burst``) and a cap of ``max_concurrency`` calls in flight. When there is no capacity:

- ``get`` does not wait: it answers the job's last known Resource (its record in the state store, read by the
  ``job_state`` policy), or RUNNING with a message saying the status was not checked; never an error Propeller
  would count against the task;
- ``create`` and ``delete`` wait for capacity within the call's deadline, then fail UNAVAILABLE (Propeller retries).

Each server process has its own limiter: N replicas allow N x ``rate`` in total (docs/polling.md). The bucket is a
few lines of arithmetic on the event loop (no lock: every call runs there), which a library would not make shorter.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from flyteconnect.connector import Phase, Resource
from flyteconnect.errors import TransientError
from flyteconnect.server.pipeline.idempotent import IdempotentCreate
from flyteconnect.server.pipeline.job_state import CallCounts, JobState
from flyteconnect.server.pipeline.policy import Policy, PolicyContext, Proceed
from flyteconnect.state.jobs import JobRecord

if TYPE_CHECKING:
    from flyteconnect.server.pipeline.call import Call

__all__ = ["Limiter", "RateLimit", "TokenBucket", "rate_limit"]

LIMITED_OPERATIONS = ("create", "get", "delete")


class TokenBucket:
    """``rate`` tokens per second up to ``burst``; a call takes one."""

    __slots__ = ("_clock", "burst", "last", "rate", "tokens")

    def __init__(self, rate: float, burst: float, clock: Callable[[], float] = time.monotonic) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError(f"a rate limit needs rate > 0 and burst >= 1 (got rate={rate}, burst={burst})")
        self.rate = rate
        self.burst = burst
        self.tokens = burst
        self._clock = clock
        self.last = clock()

    def _refill(self) -> None:
        now = self._clock()
        self.tokens = min(self.burst, self.tokens + (now - self.last) * self.rate)
        self.last = now

    def take(self) -> bool:
        """Take a token if one is there."""
        self._refill()
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False

    def wait_time(self) -> float:
        """Seconds until a token is there."""
        self._refill()
        return 0.0 if self.tokens >= 1 else (1 - self.tokens) / self.rate


class Limiter:
    """A connector's bucket (or None) and its in-flight cap (or None)."""

    def __init__(self, bucket: TokenBucket | None, max_concurrency: int | None) -> None:
        self.bucket = bucket
        self.max_concurrency = max_concurrency
        self.in_flight = 0
        self._freed: asyncio.Event | None = None

    def try_acquire(self) -> bool:
        """Take a slot and a token now, or nothing."""
        if self.max_concurrency is not None and self.in_flight >= self.max_concurrency:
            return False
        if self.bucket is not None and not self.bucket.take():
            return False
        self.in_flight += 1
        return True

    async def acquire(self, deadline: float | None, what: str) -> bool:
        """Wait for a slot, then a token, until ``deadline`` (monotonic); True when it had to wait."""
        waited = False
        while self.max_concurrency is not None and self.in_flight >= self.max_concurrency:
            waited = True
            if self._freed is None:
                self._freed = asyncio.Event()
            await _until(self._freed.wait(), deadline, what)
        self.in_flight += 1
        try:
            while self.bucket is not None and not self.bucket.take():
                waited = True
                pause = self.bucket.wait_time()
                if deadline is not None and time.monotonic() + pause > deadline:
                    raise TransientError(f"{what}: rate limit leaves no capacity before the deadline; retry later")
                await asyncio.sleep(pause)
        except BaseException:
            self.release()
            raise
        return waited

    def release(self) -> None:
        """Give the slot back."""
        self.in_flight -= 1
        freed, self._freed = self._freed, None
        if freed is not None:
            freed.set()


async def _until(awaitable: Any, deadline: float | None, what: str) -> None:
    remaining = None if deadline is None else deadline - time.monotonic()
    try:
        await asyncio.wait_for(awaitable, remaining)
    except asyncio.TimeoutError:
        raise TransientError(f"{what}: concurrency limit leaves no slot before the deadline; retry later") from None


class RateLimit(Policy):
    """Holds a connector's calls to its limiter (see the module docstring)."""

    __slots__ = ("counts", "limiter")

    def __init__(self, limiter: Limiter, counts: CallCounts) -> None:
        self.limiter = limiter
        self.counts = counts

    async def around(self, call: Call, proceed: Proceed) -> Any:
        """Call through the limiter; a ``get`` without capacity answers from state."""
        limiter = self.limiter
        if call.operation == "get":
            if not limiter.try_acquire():
                self.counts.saved["rate_limited"].value += 1
                record: JobRecord | None = call.noted(JobRecord)
                if record is not None:
                    return call.answer(record.to_resource())
                return call.answer(Resource(phase=Phase.RUNNING, message="status not checked: rate limited"))
        elif await limiter.acquire(call.deadline, f"{call.entry.name} {call.operation}"):
            self.counts.delayed.value += 1
        try:
            self.counts.external.value += 1
            return await proceed(call)
        finally:
            limiter.release()


def rate_limit(ctx: PolicyContext) -> RateLimit | None:
    """Factory: on ``create``, ``get`` and ``delete`` of connectors with a ``rate`` or ``max_concurrency`` setting;
    one limiter per connector (kept across refreshes while its settings stay the same)."""
    if ctx.operation not in LIMITED_OPERATIONS:
        return None
    rate = float(ctx.settings.get("rate", 0) or 0)
    cap = ctx.settings.get("max_concurrency")
    if rate <= 0 and not cap:
        return None
    burst = float(ctx.settings.get("burst", max(1.0, rate)))
    key = f"rate_limit:{ctx.entry.label}:{rate}:{burst}:{cap}"
    limiter = ctx.shared.get(key)
    if limiter is None:
        limiter = ctx.shared[key] = Limiter(TokenBucket(rate, burst) if rate > 0 else None, int(cap) if cap else None)
    for outer in (ctx.built(JobState), ctx.built(IdempotentCreate)):
        if outer is not None:
            outer.counts_calls = False  # this policy counts the calls that reach the connector
    return RateLimit(limiter, CallCounts.of(ctx, "rate_limited"))
