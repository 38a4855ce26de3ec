"""Idempotent create: one external job per task execution attempt, however often CreateTask arrives (issue 19 item 3).

Propeller may send CreateTask again for the same attempt (its call timed out, a replica restarted). The
``IdempotentCreate`` policy keys each create by its task execution identity (``task_execution_id`` from
TaskExecutionMetadata, retry attempt included) in the state store:

- the first caller claims the key (``get_or_set``: atomic across replicas sharing Redis), creates, and records
  the resource_meta it got;
- a duplicate gets that resource_meta without calling the connector; one that arrives while the first is still in
  flight waits for it (woken at once in the same process, polling the store across replicas) within its deadline,
  then gets UNAVAILABLE, which Propeller retries;
- when the first create fails, its claim is dropped, so the retry creates.

A claim whose owner died (SIGKILL) expires after the call's bound plus ``CLAIM_SLACK`` seconds. Settings:
``idempotent_create`` (default True; a connector whose ``create`` is itself idempotent may opt out) and
``idempotency_ttl`` (seconds a record is kept, default 86400). Creates without a task execution id (local runs) pass
through.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
from typing import TYPE_CHECKING, Any

from flyteconnect.errors import TransientError
from flyteconnect.server.pipeline.job_state import CallCounts, shared_state
from flyteconnect.server.pipeline.policy import Policy, PolicyContext, Proceed

if TYPE_CHECKING:
    from flyteconnect.server.pipeline.call import Call
    from flyteconnect.state import StateStore

__all__ = ["CLAIM_SLACK", "IdempotentCreate", "idempotent_create"]

PENDING = b"pending"
DONE = b"done:"
CLAIM_SLACK = 30.0
"""Seconds a claim outlives its create's bound (then a duplicate may create: the owner is presumed dead)."""
_POLL_FIRST, _POLL_MAX = 0.02, 0.5


def create_key(label: str, execution_id: bytes) -> str:
    """``create:<task category>:<digest>`` of the serialized task execution identifier (retry attempt included;
    Propeller writes the same identifier as the same bytes)."""
    return f"create:{label}:{hashlib.blake2b(execution_id, digest_size=16).hexdigest()}"


class IdempotentCreate(Policy):
    """One create per task execution attempt (see the module docstring)."""

    __slots__ = ("counts", "counts_calls", "creating", "shared", "ttl", "waiting")

    def __init__(self, shared: dict[str, Any], ttl: float, counts: CallCounts) -> None:
        self.shared = shared
        self.ttl = ttl
        self.counts = counts
        self.counts_calls = True
        self.creating: set[str] = set()
        """Keys of the creates in flight in this process."""
        self.waiting: dict[str, asyncio.Event] = {}
        """Events of those a duplicate here waits for (made by the first duplicate; set when the create is done)."""

    async def around(self, call: Call, proceed: Proceed) -> Any:
        """Create once; duplicates get the first create's resource_meta."""
        metadata = call.kwargs.get("task_execution_metadata")
        try:
            execution_id = metadata.task_execution_id_bytes() if metadata is not None else b""
        except Exception:  # malformed metadata: the connector gets the error if it reads it (shallow parsing)
            execution_id = b""
        if not execution_id:
            return await proceed(call)
        store = shared_state(self.shared)
        key = create_key(call.entry.label, execution_id)
        claim_ttl = (call.bound if call.bound is not None else 60.0) + CLAIM_SLACK
        while True:
            found = await store.get_or_set(key, PENDING, claim_ttl)
            if found is None:  # claimed: this call creates
                return await self._create(call, proceed, store, key)
            created = found[len(DONE) :] if found.startswith(DONE) else await self._wait(call, store, key)
            if created is not None:
                self.counts.saved["idempotent"].value += 1
                # The recorded bytes are the encoded resource_meta the connector gave (checked then): the adapter's
                # convert makes them its reply without decoding and encoding them again (16k instructions).
                return created if call.convert is None else call.convert(created)
            # The claim vanished (its create failed or its owner died): claim it ourselves.

    async def _create(self, call: Call, proceed: Proceed, store: StateStore, key: str) -> Any:
        self.creating.add(key)
        try:
            if self.counts_calls:
                self.counts.external.value += 1
            try:
                reply = await proceed(call)
            except BaseException:
                await asyncio.shield(store.delete(key))  # the retry must be free to create
                raise
            # The encoded resource_meta, not the reply: the adapter's convert (its reply message) may differ per call.
            resource_meta = reply if call.convert is None else call.resource_meta
            if resource_meta is not None:
                await store.set(key, DONE + resource_meta, self.ttl)
            else:  # answered by a policy inside this one: nothing of the connector's to record
                await asyncio.shield(store.delete(key))
            return reply
        finally:
            self.creating.discard(key)
            done = self.waiting.pop(key, None)  # made by a duplicate that waits here
            if done is not None:
                done.set()

    async def _wait(self, call: Call, store: StateStore, key: str) -> bytes | None:
        """The resource_meta the first create recorded, or None once its claim is gone; UNAVAILABLE at the deadline."""
        deadline = call.deadline
        delay = _POLL_FIRST
        while True:
            value = await store.get(key)
            if value is None:
                return None
            if value.startswith(DONE):
                return value[len(DONE) :]
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise TransientError(
                    f"{call.entry.name}: a create for this task execution is still in flight; retry later"
                )
            pause = delay if remaining is None else min(delay, remaining)
            if key in self.creating:  # the first create runs in this process: wake as soon as it is done
                done = self.waiting.get(key)
                if done is None:
                    done = self.waiting[key] = asyncio.Event()
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(done.wait(), max(pause, 1.0) if remaining is None else remaining)
            else:
                await asyncio.sleep(pause)
                delay = min(delay * 2, _POLL_MAX)


def idempotent_create(ctx: PolicyContext) -> IdempotentCreate | None:
    """Factory: on ``create``, unless the connector or the operator set ``idempotent_create`` to False."""
    if ctx.operation != "create" or not ctx.settings.get("idempotent_create", True):
        return None
    ttl = float(ctx.settings.get("idempotency_ttl", 86_400.0))
    return IdempotentCreate(ctx.shared, ttl, CallCounts.of(ctx, "idempotent"))
