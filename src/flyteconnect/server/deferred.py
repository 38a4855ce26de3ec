"""gRPC services whose code loads on their first call instead of at start.

A protocol served by default (Flyte 2) and server reflection cost their protos and handlers at start-up, before the
first answer, on servers most of which never see a Flyte 2 or reflection call. ``DeferredHandler`` is a generic
handler claiming some services by name: the real handlers are built (imports and all) when the first call for one of
them arrives. Service names are known up front, so health and reflection list them from the start.
``DeferredAdapter`` is a protocol adapter built on it: its module is imported on first use (or on ``load``: the
server loads deferred protocols before answering a reflection request, which reads descriptors from the pool).
"""

from __future__ import annotations

import importlib
import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING

import grpc

from flyteconnect.server.grpc_util import GenericOnly

if TYPE_CHECKING:
    from flyteconnect.server.dispatch import Dispatcher

__all__ = ["Collector", "DeferredAdapter", "DeferredHandler"]

log = logging.getLogger("flyteconnect.server")


class Collector(GenericOnly):
    """Stands in for the server while deferred handlers are built: keeps the generic handlers in ``handlers``
    (registered ones are dropped, as by ``GenericOnly``)."""

    def __init__(self) -> None:  # no server behind it: the handlers are kept here
        self.handlers: list[grpc.GenericRpcHandler] = []

    def add_generic_rpc_handlers(self, handlers: Iterable[grpc.GenericRpcHandler]) -> None:
        """Keep ``handlers``."""
        self.handlers.extend(handlers)


class DeferredHandler:
    """A generic handler for ``services`` whose real handlers ``build(collector)`` registers on the first call."""

    def __init__(self, services: Sequence[str], build: Callable[[Collector], None], what: str) -> None:
        self._prefixes = tuple(f"/{s}/" for s in services)
        self._build = build
        self._what = what
        self._handlers: list[grpc.GenericRpcHandler] | None = None
        self._found: dict[str, grpc.RpcMethodHandler] = {}
        self._lock = threading.Lock()

    @property
    def loaded(self) -> bool:
        """Whether the real handlers have been built."""
        return self._handlers is not None

    def load(self) -> None:
        """Build the real handlers (once; a failure is logged and the services' methods stay unknown)."""
        if self._handlers is not None:
            return
        with self._lock:
            if self._handlers is not None:
                return
            collector = Collector()
            try:
                self._build(collector)
            except Exception:
                log.exception("%s failed to load: its calls answer UNIMPLEMENTED", self._what)
                collector.handlers = []
            self._handlers = collector.handlers

    def service(self, handler_call_details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler | None:
        """The real handler of a call for one of the services (building them first if needed), else None."""
        method = handler_call_details.method
        found = self._found.get(method)
        if found is not None:  # every call after a method's first: one lookup
            return found
        if not method.startswith(self._prefixes):
            return None
        if self._handlers is None:
            self.load()
        for generic in self._handlers or ():
            found = generic.service(handler_call_details)
            if found is not None:
                self._found[method] = found
                return found
        return None


class DeferredAdapter:
    """A ``ProtocolAdapter`` whose module ``target`` (``"module:attribute"``) is imported on first use."""

    def __init__(self, name: str, target: str, service_names: Sequence[str]) -> None:
        self.name = name
        self.service_names: Sequence[str] = tuple(service_names)
        self._target = target
        self._handler: DeferredHandler | None = None

    def add_to_server(self, server: grpc.aio.Server, dispatcher: Dispatcher) -> None:
        """Claim the protocol's services on ``server``; nothing is imported yet."""

        def build(collector: Collector) -> None:
            module_name, attr = self._target.split(":")
            adapter = getattr(importlib.import_module(module_name), attr)
            adapter.add_to_server(collector, dispatcher)

        self._handler = DeferredHandler(self.service_names, build, f"protocol {self.name}")
        server.add_generic_rpc_handlers((self._handler,))

    @property
    def loaded(self) -> bool:
        """Whether the real adapter has been imported and registered."""
        return self._handler is not None and self._handler.loaded

    def load(self) -> None:
        """Import and register the real adapter now (after ``add_to_server``)."""
        if self._handler is not None:
            self._handler.load()
