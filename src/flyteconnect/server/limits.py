"""Limits that keep a server's memory bounded under slow, stuck or hostile clients, and health answering.

A reply the caller does not read stays in the server until its connection goes away: a GetTask for 1 MiB of outputs
holds about 2 MiB (grpc's copy and ours) for as long as the client sits on it. So the server bounds:

- connections (``max_connections``), streams per connection (``max_concurrent_streams``), and how long a dead or
  idle peer keeps its connection (keepalive pings it must answer, idle and age limits): grpc channel options,
  ``grpc_options``;
- calls being worked on (``max_concurrent_rpcs``): a call holds a slot while its handler runs (the connector
  call, the reply's encoding); one more answers RESOURCE_EXHAUSTED at once. grpc's own limit, four times higher
  (``grpc_rpc_cap``), also counts the calls whose reply is written but not yet sent (a caller not reading);
- bytes of replies in flight (``max_reply_bytes``): the serialized replies the server writes itself (CreateTask,
  GetTask, ExecuteTaskSync) of at least ``CHARGED_FROM`` bytes are charged until their call ends; a reply that would
  go over answers RESOURCE_EXHAUSTED instead (a single reply larger than the whole budget still goes when nothing
  else is in flight), and from then until a reply is taken every new call does, before any work is done for it. Once the
  large replies are gone, the heap they came from is trimmed (``trim_heap``), so the RSS returns near its baseline.

Both call limits are applied by ``GuardedHandlers``, a generic handler in front of the protocols' handlers. Health
is registered beside it, not behind it: it keeps answering while connector calls are refused, as long as grpc's
own limit is not reached (it keeps ``HEALTH_ROOM`` calls for health above four times the call limit). Per call the
guard costs a coroutine and a counter (no done callback: that would cost as much again, measured); only large
replies register one.
"""

from __future__ import annotations

import asyncio
import ctypes
import functools
import inspect
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # grpc is imported on first use: ``Limits`` is read by the CLI before anything is served
    import grpc
    from prometheus_client.core import Metric

__all__ = ["CHARGED_FROM", "Admission", "GuardedHandlers", "Limits", "grpc_options", "grpc_rpc_cap", "trim_heap"]

MiB = 1024 * 1024
CHARGED_FROM = 16 * 1024
"""Replies smaller than this are not charged to the reply budget (the common poll answer is a few hundred bytes)."""
STALLED_FACTOR = 4
"""grpc's own cap is this many times ``max_concurrent_rpcs`` (plus HEALTH_ROOM): calls whose handler returned but
whose reply is not sent yet (a caller not reading) count there, not in ``max_concurrent_rpcs``."""
HEALTH_ROOM = 128
"""Calls grpc admits beyond that, for health checks."""
_current_task = asyncio.current_task
TRIM_AFTER = 16 * MiB
"""Trim the heap once no large reply is in flight if at least this much was charged since the last trim..."""
TRIM_DELAY = 1.0
"""...this many seconds after the last one ended (and none started since)."""


def trim_heap() -> bool:
    """Return the free memory of glibc's heap to the system (``malloc_trim``); False where that does not exist."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        return bool(ctypes.CDLL(None).malloc_trim(0))
    except (OSError, AttributeError):  # not glibc (musl has no malloc_trim)
        return False


@dataclass(frozen=True)
class Limits:
    """Connection and call limits of one server; None turns a limit off. Times in seconds."""

    max_concurrent_rpcs: int | None = 1000
    max_reply_bytes: int | None = 64 * MiB
    max_concurrent_streams: int = 1000
    """High on purpose: a client that opens many calls at once on a new connection, before it has read this
    setting, gets the calls over the limit refused (grpc answers them UNAVAILABLE), and Propeller multiplexes all its
    polls over few connections. The call limit is what bounds memory."""
    max_connections: int | None = 1000
    keepalive_time: float = 60.0
    """Ping a connection after this long without activity..."""
    keepalive_timeout: float = 20.0
    """...and close it when the ping is not answered within this (a dead or stalled peer)."""
    min_ping_interval: float = 10.0
    """Clients may ping at most this often; more often (three times) and the connection is closed (GOAWAY)."""
    max_connection_idle: float | None = 900.0
    max_connection_age: float | None = 1800.0
    max_connection_age_grace: float = 120.0
    """Calls in flight on a connection past its age get this long to finish before it is closed."""


def _ms(seconds: float) -> int:
    return max(1, int(seconds * 1000))


def grpc_options(limits: Limits) -> list[tuple[str, Any]]:
    """The grpc server channel options that enforce ``limits`` (connections, streams, keepalive, idle, age)."""
    options: list[tuple[str, Any]] = [
        ("grpc.max_concurrent_streams", limits.max_concurrent_streams),
        ("grpc.keepalive_time_ms", _ms(limits.keepalive_time)),
        ("grpc.keepalive_timeout_ms", _ms(limits.keepalive_timeout)),
        # Keep pinging connections without calls: an idle connection whose peer died is found and closed too.
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.max_pings_without_data", 0),
        # Enforcement of clients' pings: closer together than this counts a strike; more than 2 strikes: GOAWAY.
        ("grpc.http2.min_ping_interval_without_data_ms", _ms(limits.min_ping_interval)),
        ("grpc.http2.max_ping_strikes", 2),
    ]
    if limits.max_connections is not None:
        options.append(("grpc.max_allowed_incoming_connections", limits.max_connections))
    if limits.max_connection_idle is not None:
        options.append(("grpc.max_connection_idle_ms", _ms(limits.max_connection_idle)))
    if limits.max_connection_age is not None:
        options.append(("grpc.max_connection_age_ms", _ms(limits.max_connection_age)))
        options.append(("grpc.max_connection_age_grace_ms", _ms(limits.max_connection_age_grace)))
    return options


def grpc_rpc_cap(limits: Limits) -> int | None:
    """grpc's own limit on calls in flight, whatever they are doing (replies not yet sent included): four times
    the limit on calls being worked on, plus room for health checks."""
    if limits.max_concurrent_rpcs is None:
        return None
    return STALLED_FACTOR * limits.max_concurrent_rpcs + HEALTH_ROOM


class Admission:
    """The calls and reply bytes in flight now, against ``limits`` (event-loop thread only)."""

    def __init__(self, limits: Limits) -> None:
        import grpc

        self.limits = limits
        self._exhausted = grpc.StatusCode.RESOURCE_EXHAUSTED
        self.calls = 0
        self.reply_bytes = 0
        self.rejected: dict[str, int] = {"rpcs": 0, "reply_bytes": 0}
        self.full = False
        """A reply did not fit and no reply bytes were freed since: new calls are refused before any work."""
        self._untrimmed = 0  # bytes of large replies charged since the heap was last trimmed
        self._trim_pending = False

    def release(self) -> None:
        """An admitted call's handler returned."""
        self.calls -= 1

    def _free(self, size: int, task: Any) -> None:
        self.reply_bytes -= size
        self.full = False
        if self.reply_bytes == 0 and self._untrimmed >= TRIM_AFTER and not self._trim_pending:
            self._trim_pending = True
            asyncio.get_running_loop().call_later(TRIM_DELAY, self._trim)

    def _trim(self) -> None:
        # Large replies are built from several temporary copies; glibc keeps the freed heap (its mmap threshold
        # grows with every large block freed), so after a burst the RSS would stay at its peak. Return it to the
        # system once the large replies are gone: at most once per TRIM_DELAY, never on a call's path.
        self._trim_pending = False
        if self.reply_bytes == 0:
            self._untrimmed = 0
            trim_heap()

    def admit(self, context: grpc.aio.ServicerContext) -> bool:
        """Take a call slot until the call ends; False (the call's status set to RESOURCE_EXHAUSTED) when refused.

        Also refused, before any work: every call while the reply budget is full (a reply did not fit, and none
        was taken by its caller since). The replies in it are held by callers that do not read them; producing more
        (the connector call, the outputs' encoding) would only delay health checks and grow memory until keepalive
        closes those connections.
        """
        limit = self.limits.max_concurrent_rpcs
        if limit is not None and self.calls >= limit:
            self.rejected["rpcs"] += 1
            return self._refuse(context, f"{limit} calls in flight (--max-concurrent-rpcs)")
        if self.full:
            return self._over_budget(self.limits.max_reply_bytes or 0, context)
        self.calls += 1  # given back by the guarded handler when it returns (``release``)
        return True

    def charge(self, size: int, context: grpc.aio.ServicerContext) -> bool:
        """Hold ``size`` reply bytes until the call ends; False (RESOURCE_EXHAUSTED set) when they do not fit."""
        budget = self.limits.max_reply_bytes
        if budget is not None and self.reply_bytes and self.reply_bytes + size > budget:
            self.full = True
            return self._over_budget(budget, context)
        self.reply_bytes += size
        self._untrimmed += size
        # Held until grpc's task for the call ends: the reply and status were sent, or the call failed (its peer
        # left). A task's done callbacks are dropped once run (a context's would make a reference cycle).
        _current_task().add_done_callback(functools.partial(self._free, size))  # type: ignore[union-attr]
        return True

    def _over_budget(self, budget: int, context: grpc.aio.ServicerContext) -> bool:
        self.rejected["reply_bytes"] += 1
        return self._refuse(
            context, f"{budget // MiB} MiB of replies not yet read by their callers (--max-reply-bytes-in-flight)"
        )

    def _refuse(self, context: grpc.aio.ServicerContext, why: str) -> bool:
        # A status, not context.abort: abort raises, and each refused call would leave a reference cycle
        # (exception, traceback, frames, grpc's call state) holding its memory until the next collection.
        context.set_code(self._exhausted)
        context.set_details(f"server busy: {why}; retry")
        return False

    def collect(self) -> Iterator[Metric]:
        """Prometheus families: calls and reply bytes in flight, and rejections by limit."""
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        yield GaugeMetricFamily(
            "flyte_connector_calls_in_flight", "Connector calls being worked on (handlers running)", value=self.calls
        )
        yield GaugeMetricFamily(
            "flyte_connector_reply_bytes_in_flight",
            "Bytes of large replies written but not yet taken by their callers",
            value=self.reply_bytes,
        )
        rejected = CounterMetricFamily(
            "flyte_connector_limit_rejections", "Calls answered RESOURCE_EXHAUSTED by a server limit", labels=["limit"]
        )
        for limit, count in self.rejected.items():
            rejected.add_metric([limit], count)
        yield rejected


def _guard(handler: grpc.RpcMethodHandler, admission: Admission) -> grpc.RpcMethodHandler:
    """``handler`` behind ``admission``: its behaviour takes a call slot first and charges large bytes replies."""
    import grpc

    if admission.limits.max_concurrent_rpcs is None and admission.limits.max_reply_bytes is None:
        return handler  # both call limits off: nothing to do per call
    if handler.request_streaming and handler.response_streaming:
        kind, behavior, make = "stream_stream", handler.stream_stream, grpc.stream_stream_rpc_method_handler
    elif handler.request_streaming:
        kind, behavior, make = "stream_unary", handler.stream_unary, grpc.stream_unary_rpc_method_handler
    elif handler.response_streaming:
        kind, behavior, make = "unary_stream", handler.unary_stream, grpc.unary_stream_rpc_method_handler
    else:
        kind, behavior, make = "unary_unary", handler.unary_unary, grpc.unary_unary_rpc_method_handler
    admit, charge, release = admission.admit, admission.charge, admission.release
    guarded: Callable[..., Any]
    # A refused call returns at once with its status set; grpc sends no reply for a status other than OK.
    if inspect.isasyncgenfunction(behavior):

        async def guarded_stream(request: Any, context: grpc.aio.ServicerContext) -> Any:
            if not admit(context):
                return
            try:
                async for reply in behavior(request, context):
                    if type(reply) is bytes and len(reply) >= CHARGED_FROM and not charge(len(reply), context):
                        return
                    yield reply
            finally:
                release()

        guarded = guarded_stream
    elif inspect.iscoroutinefunction(behavior):
        if kind.endswith("stream"):  # the reader/writer API: the handler writes; only its call slot is taken

            async def guarded_writer(request: Any, context: grpc.aio.ServicerContext) -> Any:
                if not admit(context):
                    return None
                try:
                    return await behavior(request, context)
                finally:
                    release()

            guarded = guarded_writer
        else:

            async def guarded_unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
                if not admit(context):
                    return b""
                try:
                    reply = await behavior(request, context)
                finally:
                    release()
                if type(reply) is bytes and len(reply) >= CHARGED_FROM and not charge(len(reply), context):
                    return b""
                return reply

            guarded = guarded_unary
    else:  # a plain def handler runs on grpc's thread pool, where the admission counts cannot be touched
        return handler
    return make(
        guarded, request_deserializer=handler.request_deserializer, response_serializer=handler.response_serializer
    )


class GuardedHandlers:
    """A generic handler serving ``handlers``' methods behind an ``Admission`` (each method wrapped once)."""

    def __init__(self, admission: Admission) -> None:
        self.admission = admission
        self.handlers: list[grpc.GenericRpcHandler] = []
        self._found: dict[str, grpc.RpcMethodHandler] = {}

    def add_generic_rpc_handlers(self, handlers: Iterable[grpc.GenericRpcHandler]) -> None:
        """Put ``handlers`` behind the admission (the server stand-in the protocol adapters register on)."""
        self.handlers.extend(handlers)

    def add_registered_method_handlers(self, service: str, handlers: Any) -> None:
        """Drop: generated ``add_*Servicer_to_server`` functions also add a generic handler (``GenericOnly``)."""

    def service(self, handler_call_details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler | None:
        """The guarded handler of the call's method, or None when no handler serves it."""
        method = handler_call_details.method
        found = self._found.get(method)
        if found is not None:
            return found
        for generic in self.handlers:
            handler = generic.service(handler_call_details)
            if handler is not None:
                found = self._found[method] = _guard(handler, self.admission)
                return found
        return None
