"""Poll pacing and answers from state: a job's GetTask is answered from its record in the state store when the
connector need not be asked (issue 19 items 1 and 4).

On ``get``, the ``JobState`` policy reads the job's record (``state.jobs``, one store lookup) and answers from it
without calling the connector when

- a callback reported the job's result (``flyteconnect.callbacks``), or
- the last answer was terminal (kept until DeleteTask or ``terminal_ttl``), or
- the connector was asked less than ``poll_interval`` seconds ago, or before the time its last ``get`` asked to be
  polled again (``Resource.poll_after``, like Argo's ``Requeue``).

Otherwise it calls the connector and records its answer (never over a callback result filed meanwhile: compare and
set). On ``delete`` it forgets the record. Settings (``server_settings`` or ``serve --connector-setting``):
``poll_interval`` (seconds, default 0: pacing off) and ``terminal_ttl`` (seconds, default 3600). The policy is built
for a connector with a poll interval, a rate limit, or on a server with callbacks on; elsewhere GetTask pays nothing.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from flyteconnect.server.pipeline.policy import Policy, PolicyContext, Proceed
from flyteconnect.server.pipeline.results import TERMINAL
from flyteconnect.state import MemoryStore, StateStore
from flyteconnect.state.jobs import JobRecord, job_key

if TYPE_CHECKING:
    from flyteconnect.server.metrics import Count, ServerMetrics
    from flyteconnect.server.pipeline.call import Call

__all__ = ["CALLBACKS", "STATE", "CallCounts", "JobState", "job_state", "shared_state"]

STATE = "state"
"""``PolicyContext.shared`` key of the server's ``StateStore``."""
CALLBACKS = "callbacks"
"""``PolicyContext.shared`` key of the server's ``CallbackServer`` (absent: callbacks off)."""
ANSWERS = ("callback", "terminal", "pacing")
"""Why a record answers a poll (the ``reason`` label of ``flyte_connector_calls_saved_total``)."""
RUNNING_TTL_EXTRA = 600.0
"""Seconds a non-terminal record outlives its next poll time (a job nobody polls is forgotten)."""


def shared_state(shared: dict[str, Any]) -> StateStore:
    """The server's state store, or a process-local one for a dispatcher used without a server."""
    store = shared.get(STATE)
    if store is None:
        store = shared[STATE] = MemoryStore()
    return store  # type: ignore[no-any-return]


class CallCounts:
    """The economics counters of one (connector, operation), resolved once when the pipeline is built."""

    __slots__ = ("delayed", "external", "saved")

    def __init__(self, metrics: ServerMetrics, task_type: str, operation: str, reasons: tuple[str, ...]) -> None:
        self.external: Count = metrics.external_calls.labels(task_type, operation)
        self.delayed: Count = metrics.calls_delayed.labels(task_type, operation)
        self.saved: dict[str, Count] = {r: metrics.calls_saved.labels(task_type, operation, r) for r in reasons}

    @classmethod
    def of(cls, ctx: PolicyContext, *reasons: str) -> CallCounts:
        """The counters of the pipeline ``ctx`` builds, with the saved-call ``reasons`` its policy counts."""
        return cls(ctx.metrics, ctx.entry.category.name, ctx.operation, reasons)


class JobState(Policy):
    """Answers GetTask from the job's record when the connector need not be asked (see the module docstring)."""

    __slots__ = ("clock", "counts", "counts_calls", "interval", "shared", "terminal_ttl")

    def __init__(self, shared: dict[str, Any], interval: float, terminal_ttl: float, counts: CallCounts) -> None:
        self.shared = shared
        self.interval = interval
        self.terminal_ttl = terminal_ttl
        self.counts = counts
        self.counts_calls = True
        """Count the calls this policy lets through (a rate limit inside it counts them instead)."""
        self.clock = time.time
        """Wall-clock seconds: records are shared by replicas (benchmarks.polling runs it on a simulated clock)."""

    async def around(self, call: Call, proceed: Proceed) -> Any:
        """Answer from the record, or ask the connector and record its answer."""
        meta = call.resource_meta
        assert meta is not None  # get always carries one
        store = shared_state(self.shared)
        key = job_key(meta)
        if call.operation == "delete":
            reply = await proceed(call)
            await store.delete(key)
            return reply
        raw = await store.get(key)
        record = JobRecord.decode(raw)
        now = self.clock()
        if record is not None:
            call.note(JobRecord, record)  # the rate limit answers from it when its bucket is empty
            reason = _answerable(record, now)
            if reason is not None:
                self.counts.saved[reason].value += 1
                return call.answer(record.to_resource())
        if self.counts_calls:
            self.counts.external.value += 1
        reply = await proceed(call)
        resource = call.outcome
        if resource is not None:  # the connector answered (not an inner policy from state)
            await self._record(store, key, raw, resource, now)
        return reply

    async def _record(self, store: StateStore, key: str, raw: bytes | None, resource: Any, now: float) -> None:
        terminal = int(resource.phase) in TERMINAL
        hint = getattr(resource, "poll_after", None)
        wait = max(self.interval, float(hint) if hint else 0.0)
        record = JobRecord.of(resource, now, "get", None if terminal else now + wait)
        ttl = self.terminal_ttl if terminal else wait + RUNNING_TTL_EXTRA
        data = record.encode()
        if raw is None:
            await store.set_if_absent(key, data, ttl)
        else:  # a callback may have filed the result since we read: keep it
            await store.compare_and_set(key, raw, data, ttl)


def _answerable(record: JobRecord, now: float) -> str | None:
    """Why ``record`` answers this poll (the metric's reason), or None when the connector must be asked."""
    if record.source == "callback":
        return "callback"
    if record.next_poll is None:
        return "terminal"
    if now < record.next_poll:
        return "pacing"
    return None


def job_state(ctx: PolicyContext) -> JobState | None:
    """Factory: on ``get`` and ``delete`` for connectors with a poll interval or a rate limit, or for every connector
    when the server serves callbacks."""
    if ctx.operation not in ("get", "delete"):
        return None
    interval = float(ctx.settings.get("poll_interval", 0) or 0)
    limited = bool(ctx.settings.get("rate") or ctx.settings.get("max_concurrency"))
    if interval <= 0 and not limited and ctx.shared.get(CALLBACKS) is None:
        return None
    terminal_ttl = float(ctx.settings.get("terminal_ttl", 3600.0))
    return JobState(ctx.shared, interval, terminal_ttl, CallCounts.of(ctx, *ANSWERS))
