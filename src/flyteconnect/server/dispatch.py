"""The protocol-neutral dispatcher: find the connector's pipeline for an operation, run it.

Protocol adapters (``flyteidl_v1``, ``flyteidl_v2``) turn requests into the SDK's views and call::

    d = Dispatcher(registry, DispatchConfig(...))          # snapshot of the registry; owns the worker threads
    value: T       = await d.create(key, template, output_prefix, inputs, metadata, convert=to_reply, timeout=t)
    value: T       = await d.get(key, resource_meta_bytes, convert=to_reply, timeout=t, **extra)
    value: T       = await d.delete(key, resource_meta_bytes, convert=to_reply, timeout=t, **extra)
    value: T       = await d.do(key, template, output_prefix, inputs, convert=to_reply, timeout=t, **extra)
    value: Any     = await d.get_metrics(key, resource_meta_bytes, convert=check, timeout=t, **extra)
    async for page in d.get_logs(key, resource_meta_bytes, convert=check, timeout=t, **extra): ...
    infos          = d.list_connectors();  info = d.get_connector(name)
    entry          = d.lookup(key)  # the connector for a category, or CallFailed(NOT_FOUND)
    with d.bounded(seconds): ...    # an adapter's own awaits (reading a stream) on the shared timer: TimeoutError

- ``key`` is ``(task_type_name, version)`` (a tuple, the fast path) or a ``TaskCategory``.
- ``timeout`` is the caller's remaining deadline in seconds (``context.time_remaining()``) or None.
- ``extra`` keyword arguments are passed to the connector method when its signature accepts them (Flyte 2 passes
  the request's connection secrets/configs this way); ``convert`` turns the connector's checked result (a
  ``Resource``, the encoded resource_meta, None for delete, a metrics / logs response) into the protocol's reply
  inside the pipeline's error handling: a failure there is the connector's bug (INTERNAL), not the caller's.
- Every failure is raised as ``CallFailed(code, details)`` (``flyteconnect.server.errors``), already logged and
  counted. ``asyncio.CancelledError`` passes through.

Each served connector has an ``Entry`` holding one ``Pipeline`` per operation (``flyteconnect.server.pipeline``),
built here at start and on ``refresh()``: the execution strategy decided once from the method (``async def`` on the
loop, ``def`` on this dispatcher's thread pool, quarantined when the watchdog caught it blocking the loop) and the
ordered policies of ``DispatchConfig.policies`` (metrics, deadline, phase memory, transient get by default).
Per-connector settings come from ``pipeline.Settings``: ``DispatchConfig.connectors`` / ``timeouts`` over the
connector class's ``server_settings``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
import logging
import os
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from types import CodeType
from typing import Any, TypeVar

from flyteconnect.connector import ConnectorBase, ConnectorMethod, ResourceMeta, TaskCategory
from flyteconnect.errors import ConnectorNotFound
from flyteconnect.registry import ConnectorInfo, ConnectorRegistry
from flyteconnect.server.errors import CallTimeout, Unimplemented, WrongConnectorKind
from flyteconnect.server.metrics import OpMetrics, ServerMetrics
from flyteconnect.server.pipeline import (
    DEFAULT_POLICIES,
    Call,
    Deadlines,
    DeadlineScope,
    OnLoop,
    OnPool,
    Pipeline,
    Policy,
    PolicyContext,
    PolicyFactory,
    Quarantined,
    Refuse,
    Settings,
    SideLoop,
    Strategy,
    failure,
)
from flyteconnect.server.pipeline.results import converted
from flyteconnect.server.pipeline.runner import now as _now
from flyteconnect.server.watchdog import LoopWatchdog, Stall

__all__ = ["OPERATIONS", "DispatchConfig", "Dispatcher", "Entry", "default_threads"]

log = logging.getLogger("flyteconnect.server")

T = TypeVar("T")

OPERATIONS = ("create", "get", "delete", "do", "get_metrics", "get_logs")
"""Every operation a connector may serve; each entry has a pipeline for each (refusing the ones it lacks)."""


def default_threads() -> int:
    """Default size of the worker pool for ``def`` methods: ``max(32, 4 x CPUs)`` (they mostly wait on I/O)."""
    return max(32, 4 * (os.cpu_count() or 1))


@dataclass
class DispatchConfig:
    """How the dispatcher runs and bounds connector calls, and the policies it builds (see the module docstring)."""

    threads: int = field(default_factory=default_threads)
    timeout: float | None = 60.0
    """Default bound of one connector call in seconds (None: only the caller's deadline)."""
    timeouts: Mapping[str, float] = field(default_factory=dict)
    """Per-connector bounds, keyed by connector name or task category (``"name_v0"``)."""
    connectors: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    """Per-connector policy settings, keyed by connector name or task category; they override the connector class's
    ``server_settings`` (``pipeline.Settings``)."""
    policies: Sequence[PolicyFactory] | None = None
    """The ordered policy factories, outermost first (None: ``pipeline.DEFAULT_POLICIES``)."""
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
    """One served task category: the connector, its inspected methods, its metrics and a pipeline per operation."""

    __slots__ = (
        "category",
        "connector",
        "decode",
        "input_bytes",
        "label",
        "meta_type",
        "methods",
        "name",
        "ops",
        "pipelines",
    )

    def __init__(self, connector: ConnectorBase, metrics: ServerMetrics) -> None:
        self.connector = connector
        self.category = connector.task_category
        self.name = connector.name
        self.label = str(self.category)
        self.methods: dict[str, ConnectorMethod] = connector.methods()
        self.meta_type: type[ResourceMeta] | None = getattr(connector, "metadata_type", None)
        meta_type = self.meta_type
        self.decode: Callable[[bytes], ResourceMeta] = self._no_meta if meta_type is None else meta_type.decode
        """Decode resource_meta bytes with the connector's metadata type (ResourceMetaError on bad bytes)."""
        task_type = self.category.name
        self.ops: dict[str, OpMetrics] = {op: metrics.op(task_type, op) for op in OPERATIONS}
        self.input_bytes = metrics.input_bytes.labels(task_type)
        self.pipelines: dict[str, Pipeline] = {}

    def missing(self, name: str) -> Exception:
        """The error for calling method ``name`` this connector does not have."""
        if name == "do":
            return WrongConnectorKind(f"{self.name} is an async connector; use CreateTask/GetTask, not ExecuteTaskSync")
        if name in ("create", "get", "delete") and self.connector.is_sync:
            return WrongConnectorKind(f"{self.name} is a sync connector; use ExecuteTaskSync")
        return Unimplemented(f"{self.name} does not implement {name}")

    def _no_meta(self, data: bytes) -> ResourceMeta:
        raise WrongConnectorKind(f"{self.name} is a sync connector; it has no resource_meta")


class Dispatcher:
    """Serves connector calls for one registry (snapshot at construction; ``refresh()`` re-reads it)."""

    def __init__(
        self,
        registry: ConnectorRegistry,
        config: DispatchConfig | None = None,
        metrics: ServerMetrics | None = None,
        shared: dict[str, Any] | None = None,
    ) -> None:
        self.registry = registry
        self.config = config or DispatchConfig()
        self.metrics = metrics or ServerMetrics()
        self.executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=self.config.threads, thread_name_prefix="flyteconnect-worker"
        )
        self._deadlines = Deadlines()
        # Policies' stores, kept across refreshes; the server puts its state store and callback server here.
        self._shared: dict[str, Any] = {} if shared is None else shared
        self._side: SideLoop | None = None
        self._watchdog: LoopWatchdog | None = None
        self._owners: dict[CodeType, tuple[Entry, str]] = {}
        self._entries: dict[tuple[str, int], Entry] = {}
        self._infos: dict[str, ConnectorInfo] = {}
        self.refresh()

    # -- lifecycle ----------------------------------------------------------------------------------------------

    def refresh(self) -> None:
        """Re-read the registry: connectors, metadata, and every pipeline rebuilt (strategies, policies, settings)."""
        entries: dict[tuple[str, int], Entry] = {}
        owners: dict[CodeType, tuple[Entry, str]] = {}
        for connector in self.registry.connectors():
            entry = Entry(connector, self.metrics)
            settings = Settings(connector, self.config)
            for operation in OPERATIONS:
                entry.pipelines[operation] = self._pipeline(entry, operation, settings)
            cat = entry.category
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

    def _pipeline(self, entry: Entry, operation: str, settings: Settings) -> Pipeline:
        method = entry.methods.get(operation)
        strategy: Strategy
        if method is None:
            strategy = Refuse(lambda: entry.missing(operation))
        elif method.is_async:
            strategy = OnLoop(method)
        else:
            strategy = OnPool(method, self.executor)
        built: list[Policy] = []
        for factory in self.config.policies if self.config.policies is not None else DEFAULT_POLICIES:
            ctx = PolicyContext(
                entry.connector, entry, operation, settings, self.config, self.metrics, self._shared, built
            )
            policy = factory(ctx)
            if policy is not None:
                built.append(policy)
        cfg = self.config
        return Pipeline(
            entry,
            operation,
            method,
            strategy,
            built,
            self._deadlines,
            timeout=settings.get("timeout", cfg.timeout),
            margin=cfg.deadline_margin,
            debug=cfg.debug,
        )

    def _side_loop(self) -> SideLoop:
        if self._side is None:
            self._side = SideLoop()
        return self._side

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
            log.warning(
                "event loop blocked for over %.2fs at %s (outside connector methods)", stall.seconds, stall.location
            )
            return
        entry, method = stall.owner
        self.metrics.loop_stalls.labels(entry.category.name, method).inc()
        action = "its later calls run on a separate loop thread" if self.config.quarantine else "quarantine is off"
        log.warning(
            "event loop blocked for over %.2fs by %s (task type %s), async method %s() at %s: it must not call "
            "blocking code; make it a plain def or await non-blocking calls; %s",
            stall.seconds,
            entry.name,
            entry.label,
            method,
            stall.location,
            action,
        )
        pipeline = entry.pipelines.get(method)
        if self.config.quarantine and pipeline is not None and pipeline.method is not None:
            pipeline.strategy = Quarantined(pipeline.method, self._side_loop)  # from the watchdog thread: one store

    # -- lookup -------------------------------------------------------------------------------------------------

    def lookup(self, key: tuple[str, int] | TaskCategory, operation: str = "lookup") -> Entry:
        """The entry serving ``key``; ``CallFailed(NOT_FOUND)`` (counted under ``operation``) when none does."""
        k = key if type(key) is tuple else (key.name, key.version)  # type: ignore[union-attr]
        entry = self._entries.get(k)
        if entry is None:
            error = ConnectorNotFound(f"Cannot find connector for task category: {k[0]}_v{k[1]}.")
            self._not_found(error, self.metrics.op(k[0][:64], operation), operation)
        return entry  # type: ignore[return-value]

    def _not_found(self, error: Exception, op: OpMetrics, operation: str) -> None:
        failed = failure(error, operation, "", "", self.config.debug)  # the message names what was asked for
        op.failed(failed.code.name)
        raise failed from error

    def bounded(self, seconds: float | None) -> DeadlineScope:
        """``with dispatcher.bounded(s):`` raise TimeoutError when the block's awaits outlast ``s`` seconds.

        Uses the dispatcher's shared coarse timer (no timer per call, up to 50 ms late); None means unbounded.
        """
        return DeadlineScope(self._deadlines, seconds)

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
            self._not_found(ConnectorNotFound(f"Cannot find connector for name: {name!r}."), op, "get_connector")
        op.success.inc()
        return info  # type: ignore[return-value]

    # -- operations ---------------------------------------------------------------------------------------------
    #
    # create/get/delete/do/get_metrics are plain methods that find the pipeline and return the coroutine of its
    # ``run``: a call then costs one coroutine, not a chain of them (GetTask is the server's hot path). Await the
    # result; an unknown task category raises CallFailed(NOT_FOUND) right away.

    def create(
        self,
        key: tuple[str, int] | TaskCategory,
        task_template: Any,
        output_prefix: str,
        inputs: Any = None,
        task_execution_metadata: Any = None,
        *,
        convert: Callable[[bytes], T] | None = None,
        timeout: float | None = None,
        input_bytes: int | None = None,
        **extra: Any,
    ) -> Coroutine[Any, Any, T]:
        """Call ``create``; gives the encoded resource_meta (``convert(resource_meta)`` with ``convert``)."""
        entry = self.lookup(key, "create")
        _observe_inputs(entry, inputs, input_bytes)
        kwargs = {
            "task_template": task_template,
            "output_prefix": output_prefix,
            "inputs": inputs,
            "task_execution_metadata": task_execution_metadata,
        }
        if extra:
            kwargs.update(extra)
        return entry.pipelines["create"].run(kwargs, None, convert, timeout)

    def get(
        self,
        key: tuple[str, int] | TaskCategory,
        resource_meta: bytes,
        *,
        convert: Callable[[Any], T] | None = None,
        timeout: float | None = None,
        **extra: Any,
    ) -> Coroutine[Any, Any, T]:
        """Call ``get``; gives ``convert(resource)`` (the Resource without it)."""
        entry = self._entries.get(key) if type(key) is tuple else None  # lookup()'s hit, without the call
        if entry is None:
            entry = self.lookup(key, "get")
        return entry.pipelines["get"].run(extra, resource_meta, convert, timeout)

    def delete(
        self,
        key: tuple[str, int] | TaskCategory,
        resource_meta: bytes,
        *,
        convert: Callable[[None], T] | None = None,
        timeout: float | None = None,
        **extra: Any,
    ) -> Coroutine[Any, Any, T]:
        """Call ``delete``; gives None (``convert(None)`` with ``convert``: the adapter's reply)."""
        return self.lookup(key, "delete").pipelines["delete"].run(extra, resource_meta, convert, timeout)

    def do(
        self,
        key: tuple[str, int] | TaskCategory,
        task_template: Any,
        output_prefix: str,
        inputs: Any = None,
        *,
        convert: Callable[[Any], T] | None = None,
        timeout: float | None = None,
        input_bytes: int | None = None,
        **extra: Any,
    ) -> Coroutine[Any, Any, T]:
        """Call a sync connector's ``do``; gives ``convert(resource)``. The phase must be terminal."""
        entry = self.lookup(key, "do")
        _observe_inputs(entry, inputs, input_bytes)
        kwargs = {"task_template": task_template, "output_prefix": output_prefix, "inputs": inputs}
        if extra:
            kwargs.update(extra)
        return entry.pipelines["do"].run(kwargs, None, convert, timeout)

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
        return self.lookup(key, "get_metrics").pipelines["get_metrics"].run(extra, resource_meta, convert, timeout)

    async def get_logs(
        self,
        key: tuple[str, int] | TaskCategory,
        resource_meta: bytes,
        *,
        convert: Callable[[Any], T] | None = None,
        timeout: float | None = None,
        **extra: Any,
    ) -> AsyncIterator[T]:
        """Stream the optional ``get_logs`` pages: a response, a list of them, a generator or an async generator.

        A stream runs its pipeline's ``enter`` and ``exit`` hooks around the whole stream; the deadline bounds each
        page of an async generator, and the whole call otherwise.
        """
        entry = self.lookup(key, "get_logs")
        pipeline = entry.pipelines["get_logs"]
        op = entry.ops["get_logs"]
        start = _now()
        call = Call(pipeline, extra, resource_meta, None, timeout, start, pipeline.bound(timeout))
        op.in_flight.inc()
        try:
            pipeline.enter(call)
            method = pipeline.method
            if method is not None and method.is_async_gen:
                kwargs = method.keywords({"resource_meta": entry.decode(resource_meta), **extra})
                bound = call.bound
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
                        yield converted(entry, "get_logs", convert, page)
                finally:
                    await agen.aclose()
            else:
                result = await pipeline.attempt(call)
                if isinstance(result, (list, tuple)):
                    for page in result:
                        yield converted(entry, "get_logs", convert, page)
                elif inspect.isasyncgen(result) or hasattr(result, "__anext__"):
                    async for page in result:
                        yield converted(entry, "get_logs", convert, page)
                elif inspect.isgenerator(result):
                    loop = asyncio.get_running_loop()
                    while True:
                        page = await loop.run_in_executor(self.executor, next, result, _END)
                        if page is _END:
                            break
                        yield converted(entry, "get_logs", convert, page)
                else:
                    yield converted(entry, "get_logs", convert, result)
        except (asyncio.CancelledError, GeneratorExit) as e:
            op.failed("CANCELLED")
            pipeline.exit(call, asyncio.CancelledError() if isinstance(e, GeneratorExit) else e)
            raise
        except BaseException as e:
            failed = pipeline.fail(e)
            op.failed(failed.code.name)
            pipeline.exit(call, failed)
            raise failed from e
        finally:
            op.in_flight.dec()
            op.latency.observe(_now() - start)
        pipeline.exit(call, None)
        op.success.inc()


_END = object()


def _observe_inputs(entry: Entry, inputs: Any, size: int | None) -> None:
    if size is None:
        size = 0
        if inputs is not None:
            pb = inputs.to_flyte_idl() if hasattr(inputs, "to_flyte_idl") else inputs
            size = pb.ByteSize() if hasattr(pb, "ByteSize") else 0
    entry.input_bytes.observe(size)
