"""The protocol-neutral dispatcher: find the connector, call it, bound it, map its errors, record metrics.

Protocol adapters (``flyteidl_v1``, ``flyteidl_v2``) turn requests into the SDK's views and call::

    d = Dispatcher(registry, DispatchConfig(...))          # snapshot of the registry; owns the worker threads
    meta: bytes    = await d.create(key, template, output_prefix, inputs, task_execution_metadata, timeout=t, **extra)
    value: T       = await d.get(key, resource_meta_bytes, convert=to_proto, timeout=t, **extra)
    None           = await d.delete(key, resource_meta_bytes, timeout=t, **extra)
    value: T       = await d.do(key, template, output_prefix, inputs, convert=to_proto, timeout=t, **extra)
    value: Any     = await d.get_metrics(key, resource_meta_bytes, convert=check, timeout=t, **extra)
    async for page in d.get_logs(key, resource_meta_bytes, convert=check, timeout=t, **extra): ...
    infos          = d.list_connectors();  info = d.get_connector(name)
    entry          = d.lookup(key)  # the connector for a category, or CallFailed(NOT_FOUND)
    with d.bounded(seconds): ...    # an adapter's own awaits (reading a stream) on the shared timer: TimeoutError

- ``key`` is ``(task_type_name, version)`` (a tuple, the fast path) or a ``TaskCategory``.
- ``timeout`` is the caller's remaining deadline in seconds (``context.time_remaining()``) or None. Each connector
  call is bounded by ``min(deadline - margin, per-connector timeout)``; the margin leaves time to answer.
- ``extra`` keyword arguments are passed to the connector method when its signature accepts them (Flyte 2 passes
  the request's connection secrets/configs this way); ``convert`` turns the connector's ``Resource`` (or metrics /
  logs response) into the protocol's message and runs inside the dispatcher's error handling: a failure there is the
  connector's bug (INTERNAL), not the caller's. For ``def`` methods it runs on the worker thread with the method.
- Every failure is raised as ``CallFailed(code, details)`` (``flyteconnect.server.errors``), already logged and
  counted: adapters only call ``context.abort(e.code, e.details)``. ``asyncio.CancelledError`` passes through.

Execution model: whether a method is ``def`` or ``async def`` was decided at registration
(``ConnectorBase.methods()``). ``async def`` methods are awaited on the loop; ``def`` methods run on this dispatcher's
``ThreadPoolExecutor`` (``threads`` workers) with the caller's contextvars. When the watchdog sees an ``async def``
method block the loop, that method is *quarantined*: later calls run on a separate loop thread, so one badly written
connector cannot stall the others again (``quarantine=False`` disables this).

Transient failures in ``get``: a ``TransientError`` or a timeout is retried with exponential backoff while the deadline
allows (``transient_retries``); if it still fails the caller gets a normal answer instead of an error (Propeller fails
a task after 5 failed GetTask calls over its whole life): the last phase this server saw for that resource_meta
(kept in a small LRU) or RUNNING, with a message naming the problem. After ``transient_max_consecutive`` such answers
in a row for the same job, the answer is RETRYABLE_FAILED so Propeller retries the task. Phases are remembered only
for connectors that had a transient failure since start (healthy connectors pay nothing for this).
``transient_retries=-1`` turns this off (errors become UNAVAILABLE / DEADLINE_EXCEEDED).

Resources are validated: a ``get``/``do`` result that is not a ``Resource``, has phase UNDEFINED (Propeller would
read the zero ``state`` as a retryable failure) or, for ``do``, a non-terminal phase (Propeller cannot poll a sync
task) is a connector bug reported as INTERNAL naming the connector and method.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextvars
import functools
import inspect
import logging
import os
import sys
import threading
import time
from bisect import bisect_left
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from types import CodeType
from typing import Any, TypeVar

from flyteconnect.connector import ConnectorBase, ConnectorMethod, Phase, Resource, ResourceMeta, TaskCategory
from flyteconnect.errors import ConnectorNotFound, TransientError
from flyteconnect.registry import ConnectorInfo, ConnectorRegistry
from flyteconnect.server.errors import (
    CallFailed,
    CallTimeout,
    ConnectorBug,
    Unimplemented,
    WrongConnectorKind,
    is_expected,
    to_status,
)
from flyteconnect.server.metrics import LATENCY_BUCKETS, OpMetrics, ServerMetrics
from flyteconnect.server.watchdog import LoopWatchdog, Stall

__all__ = ["DispatchConfig", "Dispatcher", "Entry", "default_threads"]

log = logging.getLogger("flyteconnect.server")

T = TypeVar("T")

# One clock for latencies and deadlines (the deadline of a call starts when its latency does); bound once, since the
# hot path reads them per call.
_now = time.monotonic
_current_task = asyncio.current_task

_VALID_PHASES = frozenset(int(p) for p in Phase if p is not Phase.UNDEFINED)
_TERMINAL = frozenset({int(Phase.SUCCEEDED), int(Phase.FAILED), int(Phase.ABORTED), int(Phase.RETRYABLE_FAILED)})


def default_threads() -> int:
    """Default size of the worker pool for ``def`` methods: ``max(32, 4 x CPUs)`` (they mostly wait on I/O)."""
    return max(32, 4 * (os.cpu_count() or 1))


@dataclass
class DispatchConfig:
    """How the dispatcher runs and bounds connector calls (see the module docstring)."""

    threads: int = field(default_factory=default_threads)
    timeout: float | None = 60.0
    """Default bound of one connector call in seconds (None: only the caller's deadline)."""
    timeouts: Mapping[str, float] = field(default_factory=dict)
    """Per-connector bounds, keyed by connector name or task category (``"name_v0"``)."""
    deadline_margin: float = 0.25
    """Seconds (at most 10% of the deadline) kept free before the caller's deadline to send the answer."""
    transient_retries: int = 2
    transient_backoff: float = 0.1
    transient_max_consecutive: int = 10
    phase_cache_size: int = 10_000
    stall_threshold: float | None = 0.5
    """Seconds the loop may be blocked before the watchdog reports it (None disables the watchdog)."""
    quarantine: bool = True
    debug: bool = False
    """Append the last traceback frames of unexpected errors to the status details."""


class Entry:
    """One served task category: the connector, its inspected methods, bound, and cached metric children."""

    __slots__ = (
        "category",
        "connector",
        "decode",
        "flaky",
        "input_bytes",
        "label",
        "meta_type",
        "methods",
        "name",
        "ops",
        "quarantined",
        "timeout",
    )

    def __init__(self, connector: ConnectorBase, timeout: float | None, metrics: ServerMetrics) -> None:
        self.connector = connector
        self.category = connector.task_category
        self.name = connector.name
        self.label = str(self.category)
        self.methods: dict[str, ConnectorMethod] = connector.methods()
        self.meta_type: type[ResourceMeta] | None = getattr(connector, "metadata_type", None)
        meta_type = self.meta_type
        self.decode: Callable[[bytes], ResourceMeta] = self._no_meta if meta_type is None else meta_type.decode
        """Decode resource_meta bytes with the connector's metadata type (ResourceMetaError on bad bytes)."""
        self.timeout = timeout
        self.quarantined: set[str] = set()
        self.flaky = False
        """Set at this connector's first transient get failure; from then on the last phases are remembered."""
        task_type = self.category.name
        self.ops: dict[str, OpMetrics] = {
            op: metrics.op(task_type, op) for op in ("create", "get", "delete", "do", "get_metrics", "get_logs")
        }
        self.input_bytes = metrics.input_bytes.labels(task_type)

    def method(self, name: str) -> ConnectorMethod:
        """The method ``name`` or ``Unimplemented``/``WrongConnectorKind`` naming the connector."""
        found = self.methods.get(name)
        if found is not None:
            return found
        if name == "do":
            raise WrongConnectorKind(f"{self.name} is an async connector; use CreateTask/GetTask, not ExecuteTaskSync")
        if name in ("create", "get", "delete") and self.connector.is_sync:
            raise WrongConnectorKind(f"{self.name} is a sync connector; use ExecuteTaskSync")
        raise Unimplemented(f"{self.name} does not implement {name}")

    def _no_meta(self, data: bytes) -> ResourceMeta:
        raise WrongConnectorKind(f"{self.name} is a sync connector; it has no resource_meta")


class _SideLoop:
    """An event loop on its own thread, for async methods that were caught blocking the main loop."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="flyteconnect-quarantine", daemon=True)
        self._thread.start()

    def submit(self, coro: Any, ctx: contextvars.Context) -> concurrent.futures.Future[Any]:
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
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=2)
        if not self._thread.is_alive():
            self.loop.close()


def _sync_call(func: Callable[..., Any], kwargs: dict[str, Any], post: Callable[[Any], Any] | None) -> Any:
    result = func(**kwargs)
    return post(result) if post is not None else result


class _PhaseMemory:
    """Last phase seen and consecutive transient failures per resource_meta (a bounded LRU)."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._data: collections.OrderedDict[bytes, list[int]] = collections.OrderedDict()
        self._lock = threading.Lock()  # ``def`` connectors' results are converted (and seen) on worker threads

    def seen(self, key: bytes, phase: int) -> None:
        with self._lock:
            data = self._data
            data[key] = [phase, 0]
            data.move_to_end(key)
            if len(data) > self._size:
                data.popitem(last=False)

    def failed(self, key: bytes) -> tuple[int | None, int]:
        """Record a transient failure; returns (last phase or None, consecutive failures so far)."""
        with self._lock:
            state = self._data.get(key)
            if state is None:
                state = self._data[key] = [0, 0]
            state[1] += 1
            self._data.move_to_end(key)
            if len(self._data) > self._size:
                self._data.popitem(last=False)
            return (state[0] or None), state[1]


class _Deadlines:
    """Bounds connector calls with one coarse timer instead of a timer per call.

    ``asyncio.timeout`` schedules and cancels a heap timer per call; here a call only enters ``calls`` (task ->
    ``time.monotonic()`` deadline; the hot path writes it directly), and one callback every ``tick`` seconds cancels
    the tasks whose bound passed (so bounds are up to ``tick`` late).
    """

    def __init__(self, tick: float = 0.05) -> None:
        self._tick = tick
        self.calls: dict[asyncio.Task[Any], float] = {}
        self.fired: set[asyncio.Task[Any]] = set()
        self.timer: asyncio.TimerHandle | None = None

    def arm(self) -> None:
        """Start the checking timer (the caller saw ``timer is None`` after adding a call)."""
        self.timer = asyncio.get_running_loop().call_later(self._tick, self._check)

    def _check(self) -> None:
        now = time.monotonic()
        expired = [task for task, when in self.calls.items() if when <= now]
        for task in expired:
            del self.calls[task]
            self.fired.add(task)
            task.cancel()
        self.timer = None
        if self.calls:
            self.arm()

    def claim(self, task: asyncio.Task[Any]) -> bool:
        """Whether this timer cancelled ``task``; if so, take that cancellation back so the task can go on."""
        if task not in self.fired:
            return False
        self.fired.discard(task)
        if sys.version_info >= (3, 11):
            task.uncancel()
        return True

    def close(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None


class _DeadlineScope:
    """``with``: the current task's awaits inside the block are bounded by ``_Deadlines``; ``error()`` is raised when
    the bound passes (TimeoutError by default)."""

    __slots__ = ("_bound", "_deadlines", "_error", "_task")

    def __init__(
        self, deadlines: _Deadlines, bound: float | None, error: Callable[[], BaseException] = TimeoutError
    ) -> None:
        self._deadlines = deadlines
        self._bound = bound
        self._error = error
        self._task: asyncio.Task[Any] | None = None

    def __enter__(self) -> None:
        if self._bound is None:
            return
        self._task = task = _current_task()
        deadlines = self._deadlines
        deadlines.calls[task] = _now() + self._bound  # type: ignore[index]
        if deadlines.timer is None:
            deadlines.arm()

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None, tb: Any) -> None:
        task = self._task
        if task is None:
            return
        deadlines = self._deadlines
        deadlines.calls.pop(task, None)
        if et is asyncio.CancelledError and deadlines.claim(task):
            raise self._error() from None


class Dispatcher:
    """Serves connector calls for one registry (snapshot at construction; ``refresh()`` re-reads it)."""

    def __init__(
        self,
        registry: ConnectorRegistry,
        config: DispatchConfig | None = None,
        metrics: ServerMetrics | None = None,
    ) -> None:
        self.registry = registry
        self.config = config or DispatchConfig()
        self.metrics = metrics or ServerMetrics()
        self.executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=self.config.threads, thread_name_prefix="flyteconnect-worker"
        )
        self._phases = _PhaseMemory(self.config.phase_cache_size)
        self._deadlines = _Deadlines()
        self._side: _SideLoop | None = None
        self._watchdog: LoopWatchdog | None = None
        self._owners: dict[CodeType, tuple[Entry, str]] = {}
        self._entries: dict[tuple[str, int], Entry] = {}
        self._infos: dict[str, ConnectorInfo] = {}
        self.refresh()

    # -- lifecycle ----------------------------------------------------------------------------------------------

    def refresh(self) -> None:
        """Re-read the registry (connectors, metadata, timeouts, watchdog attribution)."""
        entries: dict[tuple[str, int], Entry] = {}
        owners: dict[CodeType, tuple[Entry, str]] = {}
        timeouts = self.config.timeouts
        for connector in self.registry.connectors():
            cat = connector.task_category
            bound = timeouts.get(str(cat), timeouts.get(connector.name, self.config.timeout))
            entry = Entry(connector, bound, self.metrics)
            entries[(cat.name, cat.version)] = entry
            for name, m in entry.methods.items():
                if m.is_async:
                    code = getattr(inspect.unwrap(m.func), "__code__", None)
                    if code is not None:
                        owners[code] = (entry, name)
        self._entries = entries
        self._owners = owners
        self._infos = {info.name: info for info in self.registry.infos()}
        self._info_list = tuple(self._infos.values())

    def start(self) -> None:
        """Start the event-loop watchdog (call from the serving loop)."""
        if self.config.stall_threshold and self._watchdog is None:
            self._watchdog = LoopWatchdog(self.config.stall_threshold, self._on_stall, lambda: self._owners)
            self._watchdog.start()

    def close(self) -> None:
        """Stop the watchdog, the quarantine loop and the worker threads (running calls finish in the background)."""
        if self._watchdog is not None:
            self._watchdog.stop()
            self._watchdog = None
        if self._side is not None:
            self._side.close()
            self._side = None
        self._deadlines.close()
        self.executor.shutdown(wait=False, cancel_futures=True)

    def _on_stall(self, stall: Stall) -> None:
        if stall.owner is None:
            log.warning("event loop blocked for %.2fs at %s (outside connector methods)", stall.seconds, stall.location)
            return
        entry, method = stall.owner
        self.metrics.loop_stalls.labels(entry.category.name, method).inc()
        action = "its later calls run on a separate loop thread" if self.config.quarantine else "quarantine is off"
        log.warning(
            "event loop blocked for %.2fs by %s (task type %s), async method %s() at %s: it must not call blocking "
            "code; make it a plain def or await non-blocking calls; %s",
            stall.seconds,
            entry.name,
            entry.label,
            method,
            stall.location,
            action,
        )
        if self.config.quarantine:
            entry.quarantined.add(method)

    # -- lookup -------------------------------------------------------------------------------------------------

    def lookup(self, key: tuple[str, int] | TaskCategory, operation: str = "lookup") -> Entry:
        """The entry serving ``key``; ``CallFailed(NOT_FOUND)`` (counted under ``operation``) when none does."""
        k = key if type(key) is tuple else (key.name, key.version)  # type: ignore[union-attr]
        entry = self._entries.get(k)
        if entry is None:
            raise self._fail(
                ConnectorNotFound(f"Cannot find connector for task category: {k[0]}_v{k[1]}."),
                None,
                None,  # the message names the category already
                operation,
                self.metrics.op(k[0][:64], operation),
            )
        return entry

    def bounded(self, seconds: float | None) -> _DeadlineScope:
        """``with dispatcher.bounded(s):`` raise TimeoutError when the block's awaits outlast ``s`` seconds.

        Uses the dispatcher's shared coarse timer (no timer per call, up to 50 ms late); None means unbounded.
        """
        return _DeadlineScope(self._deadlines, seconds)

    def list_connectors(self) -> tuple[ConnectorInfo, ...]:
        """Metadata of every served connector name (ListAgents/ListConnectors).

        The same tuple until ``refresh()``: adapters may cache the reply they build from it (``is`` tells).
        """
        self.metrics.op("", "list_connectors").success.inc()
        return self._info_list

    def get_connector(self, name: str) -> ConnectorInfo:
        """Metadata of connector ``name``, or ``CallFailed(NOT_FOUND)``."""
        info = self._infos.get(name)
        op = self.metrics.op("", "get_connector")
        if info is None:
            error = ConnectorNotFound(f"Cannot find connector for name: {name!r}.")
            raise self._fail(error, None, None, "get_connector", op)
        op.success.inc()
        return info

    # -- operations ---------------------------------------------------------------------------------------------
    #
    # create/get/delete/do/get_metrics are plain methods that find the connector and return the coroutine of
    # ``_run``: a call then costs one coroutine, not a chain of them (GetTask is the server's hot path). Await the
    # result; an unknown task category raises CallFailed(NOT_FOUND) right away.

    def create(
        self,
        key: tuple[str, int] | TaskCategory,
        task_template: Any,
        output_prefix: str,
        inputs: Any = None,
        task_execution_metadata: Any = None,
        *,
        timeout: float | None = None,
        input_bytes: int | None = None,
        **extra: Any,
    ) -> Coroutine[Any, Any, bytes]:
        """Call ``create``; gives the encoded resource_meta."""
        entry = self.lookup(key, "create")
        self._observe_inputs(entry, inputs, input_bytes)
        kwargs = {
            "task_template": task_template,
            "output_prefix": output_prefix,
            "inputs": inputs,
            "task_execution_metadata": task_execution_metadata,
        }
        if extra:
            kwargs.update(extra)
        return self._run(entry, "create", kwargs, None, _encode_meta, None, timeout)

    def get(
        self,
        key: tuple[str, int] | TaskCategory,
        resource_meta: bytes,
        *,
        convert: Callable[[Resource], T] | None = None,
        timeout: float | None = None,
        **extra: Any,
    ) -> Coroutine[Any, Any, T]:
        """Call ``get`` (with the transient policy); gives ``convert(resource)`` (the Resource without it)."""
        entry = self._entries.get(key) if type(key) is tuple else None  # lookup()'s hit, without the call
        if entry is None:
            entry = self.lookup(key, "get")
        if entry.flaky:  # remember the phases of this connector's jobs for transient answers
            convert = _Remember(self._phases, resource_meta, convert)
        return self._run(entry, "get", extra, resource_meta, _checked_resource, convert, timeout)

    def delete(
        self,
        key: tuple[str, int] | TaskCategory,
        resource_meta: bytes,
        *,
        timeout: float | None = None,
        **extra: Any,
    ) -> Coroutine[Any, Any, None]:
        """Call ``delete``."""
        entry = self.lookup(key, "delete")
        return self._run(entry, "delete", extra, resource_meta, None, None, timeout)

    def do(
        self,
        key: tuple[str, int] | TaskCategory,
        task_template: Any,
        output_prefix: str,
        inputs: Any = None,
        *,
        convert: Callable[[Resource], T] | None = None,
        timeout: float | None = None,
        input_bytes: int | None = None,
        **extra: Any,
    ) -> Coroutine[Any, Any, T]:
        """Call a sync connector's ``do``; gives ``convert(resource)``. The phase must be terminal."""
        entry = self.lookup(key, "do")
        self._observe_inputs(entry, inputs, input_bytes)
        kwargs = {"task_template": task_template, "output_prefix": output_prefix, "inputs": inputs}
        if extra:
            kwargs.update(extra)
        return self._run(entry, "do", kwargs, None, _checked_resource, convert, timeout)

    def get_metrics(
        self,
        key: tuple[str, int] | TaskCategory,
        resource_meta: bytes,
        *,
        convert: Callable[[Any], T] | None = None,
        timeout: float | None = None,
        **extra: Any,
    ) -> Coroutine[Any, Any, T]:
        """Call the optional ``get_metrics`` (UNIMPLEMENTED when absent); ``extra`` carries queries, times, step."""
        entry = self.lookup(key, "get_metrics")
        return self._run(entry, "get_metrics", extra, resource_meta, _checked, convert, timeout)

    async def _run(
        self,
        entry: Entry,
        operation: str,
        kwargs: dict[str, Any],
        resource_meta: bytes | None,
        check: Callable[[Entry, str, Any, Any], Any] | None,
        convert: Any,
        timeout: float | None,
    ) -> Any:
        """Call ``operation`` counted, timed and bounded; failures become CallFailed.

        ``kwargs`` (owned by this call) gets the decoded ``resource_meta`` when one is given and is trimmed to what
        the method accepts; the result goes through ``check(entry, operation, convert, result)``. ``get`` adds the
        transient policy. The usual case, an ``async def`` method, is awaited right here: this is the hot path.
        """
        op = entry.ops[operation]
        op.in_flight.value += 1
        start = _now()
        try:
            method = entry.methods.get(operation) or entry.method(operation)
            if resource_meta is not None:
                kwargs["resource_meta"] = entry.decode(resource_meta)
            accepted = method.accepted
            if accepted is not None and not kwargs.keys() <= accepted:
                kwargs = method.keywords(kwargs)
            bound = entry.timeout if timeout is None else self._bound(entry, timeout)
            try:
                if method.is_async and operation not in entry.quarantined:
                    if bound is None:
                        result = await method.func(**kwargs)
                    else:
                        # _bounded() inlined: the hot path saves a coroutine and a context manager per call.
                        task = _current_task()
                        deadlines = self._deadlines
                        deadlines.calls[task] = start + bound  # type: ignore[index]
                        if deadlines.timer is None:
                            deadlines.arm()
                        try:
                            result = await method.func(**kwargs)
                        except asyncio.CancelledError:
                            if not deadlines.claim(task):  # type: ignore[arg-type]
                                raise
                            raise self._timed_out(entry, method, bound) from None
                        finally:
                            deadlines.calls.pop(task, None)  # type: ignore[arg-type]
                    if check is not None:
                        result = check(entry, operation, convert, result)
                else:
                    post = None if check is None else functools.partial(check, entry, operation, convert)
                    result = await self._invoke(entry, method, kwargs, bound, post)
            except (TransientError, CallTimeout) as e:
                if operation != "get" or self.config.transient_retries < 0:
                    raise
                until = None if bound is None else start + bound
                result = await self._retry_get(entry, method, kwargs, until, resource_meta, convert, e)
        except asyncio.CancelledError:
            op.failed("CANCELLED")
            raise
        except BaseException as e:
            raise self._fail(e, entry, None, operation, op) from e
        finally:
            op.in_flight.value -= 1
            elapsed = _now() - start
            latency = op.latency
            latency.sum += elapsed
            latency.counts[bisect_left(LATENCY_BUCKETS, elapsed)] += 1
        op.success.value += 1
        return result

    async def _retry_get(
        self,
        entry: Entry,
        method: ConnectorMethod,
        kwargs: dict[str, Any],
        until: float | None,
        resource_meta: bytes | None,
        convert: Callable[[Resource], Any] | None,
        error: Exception,
    ) -> Any:
        """After a transient failure: retry with backoff while the deadline allows, else answer from memory.

        ``until`` is a ``time.monotonic()`` instant.
        """
        assert resource_meta is not None
        if not isinstance(convert, _Remember):  # this connector's first transient failure
            entry.flaky = True
            convert = _Remember(self._phases, resource_meta, convert)
        answer = convert.convert  # a transient answer's made-up phase is not remembered
        cfg = self.config
        post = functools.partial(_checked_resource, entry, "get", convert)
        attempt = 0
        while True:
            attempt += 1
            backoff = cfg.transient_backoff * (2 ** (attempt - 1))
            left = None if until is None else until - _now()
            # Another attempt only if it can still finish in time (the backoff plus as long again to run).
            if attempt > cfg.transient_retries or (left is not None and left <= 2 * backoff):
                return self._transient_answer(entry, error, resource_meta, answer)
            self.metrics.transient_retries.labels(entry.category.name, "get").inc()
            log.info("%s get: transient failure, retrying in %.2fs: %s", entry.label, backoff, error)
            await asyncio.sleep(backoff)
            try:
                result = await self._invoke(entry, method, kwargs, None if left is None else left - backoff, post)
            except (TransientError, CallTimeout) as e:
                error = e
                continue
            return result

    def _transient_answer(
        self, entry: Entry, error: Exception, resource_meta: bytes, convert: Callable[[Resource], Any] | None
    ) -> Any:
        last, consecutive = self._phases.failed(resource_meta)
        self.metrics.transient_fallbacks.labels(entry.category.name).inc()
        what = "timed out" if isinstance(error, CallTimeout) else "is temporarily unavailable"
        reason = " ".join(str(error).split())[:300]
        if consecutive >= self.config.transient_max_consecutive:
            resource = Resource(
                phase=Phase.RETRYABLE_FAILED,
                message=f"{entry.name} {what} for {consecutive} consecutive status checks: {reason}",
            )
            log.warning("%s get: giving up after %d transient failures: %s", entry.label, consecutive, reason)
        else:
            phase = last if last is not None and last not in _TERMINAL else int(Phase.RUNNING)
            resource = Resource(
                phase=phase,
                message=f"status unknown, {entry.name} {what} ({consecutive} in a row); will check again: {reason}",
            )
            log.warning("%s get: transient failure %d, answering the last phase: %s", entry.label, consecutive, reason)
        return convert(resource) if convert is not None else resource

    async def get_logs(
        self,
        key: tuple[str, int] | TaskCategory,
        resource_meta: bytes,
        *,
        convert: Callable[[Any], T] | None = None,
        timeout: float | None = None,
        **extra: Any,
    ) -> AsyncIterator[T]:
        """Stream the optional ``get_logs`` pages: a response, a list of them, a generator or an async generator."""
        entry = self.lookup(key, "get_logs")
        op = entry.ops["get_logs"]
        start = _now()
        op.in_flight.inc()
        try:
            method = entry.method("get_logs")
            kwargs = method.keywords({"resource_meta": entry.decode(resource_meta), **extra})
            bound = self._bound(entry, timeout)
            if method.is_async_gen:
                agen = method.func(**kwargs)
                try:
                    while True:
                        try:
                            with self.bounded(bound):
                                page = await agen.__anext__()
                        except StopAsyncIteration:
                            break
                        except TimeoutError:
                            raise CallTimeout(f"{entry.name} get_logs produced no page within {bound:.1f}s") from None
                        yield _checked(entry, "get_logs", convert, page)
                finally:
                    await agen.aclose()
            else:
                result = await self._invoke(entry, method, kwargs, bound, None)
                if isinstance(result, (list, tuple)):
                    for page in result:
                        yield _checked(entry, "get_logs", convert, page)
                elif inspect.isasyncgen(result) or hasattr(result, "__anext__"):
                    async for page in result:
                        yield _checked(entry, "get_logs", convert, page)
                elif inspect.isgenerator(result):
                    loop = asyncio.get_running_loop()
                    while True:
                        page = await loop.run_in_executor(self.executor, next, result, _END)
                        if page is _END:
                            break
                        yield _checked(entry, "get_logs", convert, page)
                else:
                    yield _checked(entry, "get_logs", convert, result)
        except (asyncio.CancelledError, GeneratorExit):
            op.failed("CANCELLED")
            raise
        except BaseException as e:
            raise self._fail(e, entry, None, "get_logs", op) from e
        finally:
            op.in_flight.dec()
            op.latency.observe(_now() - start)
        op.success.inc()

    # -- machinery ----------------------------------------------------------------------------------------------

    def _bound(self, entry: Entry, remaining: float | None) -> float | None:
        """min(caller's remaining deadline minus a margin, the connector's timeout)."""
        bound = entry.timeout
        if remaining is not None:
            usable = remaining - min(self.config.deadline_margin, remaining * 0.1)
            bound = usable if bound is None else min(bound, usable)
        return None if bound is None else max(bound, 0.0)

    def _observe_inputs(self, entry: Entry, inputs: Any, size: int | None) -> None:
        if size is None:
            size = 0
            if inputs is not None:
                pb = inputs.to_flyte_idl() if hasattr(inputs, "to_flyte_idl") else inputs
                size = pb.ByteSize() if hasattr(pb, "ByteSize") else 0
        entry.input_bytes.observe(size)

    async def _invoke(
        self,
        entry: Entry,
        method: ConnectorMethod,
        kwargs: dict[str, Any],
        bound: float | None,
        post: Callable[[Any], Any] | None,
    ) -> Any:
        """Run one connector method the way it was declared, within ``bound`` seconds, then ``post`` on its result."""
        if method.is_async and method.name not in entry.quarantined:
            result = await self._bounded(entry, method, method.func(**kwargs), bound)
            return post(result) if post is not None else result
        if method.is_async:
            if self._side is None:
                self._side = _SideLoop()
            awaitable = asyncio.wrap_future(self._side.submit(method.func(**kwargs), contextvars.copy_context()))
        else:
            ctx = contextvars.copy_context()
            loop = asyncio.get_running_loop()
            future = loop.run_in_executor(self.executor, ctx.run, _sync_call, method.func, kwargs, post)
            return await self._bounded(entry, method, future, bound)
        result = await self._bounded(entry, method, awaitable, bound)
        return post(result) if post is not None else result

    async def _bounded(self, entry: Entry, method: ConnectorMethod, awaitable: Any, bound: float | None) -> Any:
        with _DeadlineScope(self._deadlines, bound, lambda: self._timed_out(entry, method, bound or 0.0)):
            return await awaitable

    def _timed_out(self, entry: Entry, method: ConnectorMethod, bound: float) -> CallTimeout:
        """The error for a connector call our bound cancelled."""
        return CallTimeout(
            f"{entry.name} {method.name}() did not finish within {bound:.2f}s"
            " (the caller's deadline or the connector timeout)"
        )

    def _fail(
        self,
        exc: BaseException,
        entry: Entry | None,
        key: tuple[str, int] | None,
        operation: str,
        op: OpMetrics,
    ) -> CallFailed:
        """Map, count and log ``exc``; return the CallFailed to raise."""
        if isinstance(exc, CallFailed):
            return exc
        if entry is not None:
            category, connector = entry.label, entry.name
        else:
            category, connector = (f"{key[0]}_v{key[1]}" if key else ""), ""
        code, details = to_status(
            exc, operation=operation, category=category, connector=connector, debug=self.config.debug
        )
        op.failed(code.name)
        if is_expected(exc):
            log.warning("%s -> %s", details, code.name)
        else:
            log.error("%s -> %s", details, code.name, exc_info=exc)
        return CallFailed(code, details)


_END = object()


class _Remember:
    """A get's ``convert`` that first notes the Resource's phase for its resource_meta (connectors that had a
    transient failure: their transient answers repeat the last phase seen). Runs after the Resource is checked."""

    __slots__ = ("convert", "key", "phases")

    def __init__(self, phases: _PhaseMemory, key: bytes, convert: Callable[[Resource], Any] | None) -> None:
        self.phases = phases
        self.key = key
        self.convert = convert

    def __call__(self, resource: Resource) -> Any:
        self.phases.seen(self.key, int(resource.phase))
        return resource if self.convert is None else self.convert(resource)


def _encode_meta(entry: Entry, operation: str, convert: Any, meta: Any) -> bytes:
    if not isinstance(meta, ResourceMeta):
        raise ConnectorBug(
            f"{entry.name}.create() returned {type(meta).__name__}, expected a ResourceMeta ({_meta_name(entry)})"
        )
    try:
        data = meta.encode()
    except Exception as e:
        raise ConnectorBug(f"{entry.name}: resource_meta {type(meta).__name__} failed to encode: {e}") from e
    if not isinstance(data, bytes):
        raise ConnectorBug(f"{entry.name}: {type(meta).__name__}.encode() returned {type(data).__name__}, not bytes")
    return data


def _meta_name(entry: Entry) -> str:
    return entry.meta_type.__name__ if entry.meta_type is not None else "ResourceMeta"


def _checked_resource(entry: Entry, method: str, convert: Callable[[Resource], Any] | None, result: Any) -> Any:
    """Validate a get/do result and convert it; problems are the connector's bug."""
    if not isinstance(result, Resource):
        raise ConnectorBug(f"{entry.name}.{method}() returned {type(result).__name__}, expected flyteconnect.Resource")
    phase = result.phase
    if phase not in _VALID_PHASES:
        if not phase:
            raise ConnectorBug(
                f"{entry.name}.{method}() returned a Resource with phase UNDEFINED; return a real phase "
                "(QUEUED, RUNNING, SUCCEEDED, FAILED...)"
            )
        raise ConnectorBug(f"{entry.name}.{method}() returned a Resource with an unknown phase {phase!r}")
    if method == "do" and int(phase) not in _TERMINAL:
        raise ConnectorBug(
            f"{entry.name}.do() returned phase {Phase(phase).name}; a sync connector must return a terminal phase"
        )
    if convert is None:
        return result
    try:
        return convert(result)
    except Exception as e:
        raise ConnectorBug(f"{entry.name}.{method}() returned a Resource that cannot be sent: {e}") from e


def _checked(entry: Entry, method: str, convert: Callable[[Any], Any] | None, result: Any) -> Any:
    if convert is None:
        return result
    try:
        return convert(result)
    except ConnectorBug:
        raise
    except Exception as e:
        raise ConnectorBug(f"{entry.name}.{method}() returned an unusable {type(result).__name__}: {e}") from e
