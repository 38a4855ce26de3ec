"""Protocol adapters loaded on their first call instead of at start.

A protocol served by default (Flyte 2) costs its protos, converters and handlers at start-up, before the first
answer, even on servers no Flyte 2 executor ever calls. ``DeferredAdapter`` stands in for it: its service names are
known up front (health and reflection list them from the start) and one generic handler claims its methods; the
adapter's module is imported, and its real handlers built, when the first call for one of them arrives, or when
``load`` is called (the server does that before answering a reflection request, which needs the descriptors).
"""

from __future__ import annotations

import importlib
import logging
import threading
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

import grpc

if TYPE_CHECKING:
    from flyteconnect.server.dispatch import Dispatcher

__all__ = ["DeferredAdapter", "LoadFirst"]

log = logging.getLogger("flyteconnect.server")


class _Collector:
    """Stands in for the server while a deferred adapter registers: keeps its generic handlers."""

    def __init__(self) -> None:
        self.handlers: list[grpc.GenericRpcHandler] = []

    def add_generic_rpc_handlers(self, handlers: Iterable[grpc.GenericRpcHandler]) -> None:
        self.handlers.extend(handlers)

    def add_registered_method_handlers(self, service: str, handlers: Mapping[str, grpc.RpcMethodHandler]) -> None:
        """Ignored: the generic handlers cover the same methods."""


class DeferredAdapter:
    """A ``ProtocolAdapter`` whose module ``target`` (``"module:attribute"``) is imported on first use."""

    def __init__(self, name: str, target: str, service_names: Sequence[str]) -> None:
        self.name = name
        self.service_names: Sequence[str] = tuple(service_names)
        self._target = target
        self._prefixes = tuple(f"/{s}/" for s in self.service_names)
        self._dispatcher: Dispatcher | None = None
        self._handlers: list[grpc.GenericRpcHandler] | None = None
        self._lock = threading.Lock()

    def add_to_server(self, server: grpc.aio.Server, dispatcher: Dispatcher) -> None:
        """Claim the protocol's methods on ``server``; nothing is imported yet."""
        self._dispatcher = dispatcher
        server.add_generic_rpc_handlers((_Handler(self),))

    @property
    def loaded(self) -> bool:
        """Whether the real adapter has been imported and registered."""
        return self._handlers is not None

    def load(self) -> None:
        """Import the adapter and build its handlers (once; a failure is logged and its methods stay unknown)."""
        if self._handlers is not None:
            return
        with self._lock:
            if self._handlers is not None or self._dispatcher is None:
                return
            collector = _Collector()
            try:
                module_name, attr = self._target.split(":")
                adapter = getattr(importlib.import_module(module_name), attr)
                adapter.add_to_server(cast(Any, collector), self._dispatcher)
            except Exception:
                log.exception("protocol %s failed to load: its calls answer UNIMPLEMENTED", self.name)
                collector.handlers = []
            self._handlers = collector.handlers

    def claims(self, method: str) -> bool:
        """Whether ``method`` (``/package.Service/Method``) belongs to one of this protocol's services."""
        return method.startswith(self._prefixes)

    def handler(self, details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler | None:
        """The real handler of the call (loading the adapter first if needed)."""
        if self._handlers is None:
            self.load()
        for generic in self._handlers or ():
            found = generic.service(details)
            if found is not None:
                return found
        return None


class _Handler:
    """The generic handler a ``DeferredAdapter`` registers."""

    def __init__(self, adapter: DeferredAdapter) -> None:
        self._adapter = adapter

    def service(self, handler_call_details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler | None:
        if not self._adapter.claims(handler_call_details.method):
            return None
        return self._adapter.handler(handler_call_details)


class LoadFirst:
    """Loads deferred adapters when a call for one of ``services`` arrives, then lets the next handler answer it.

    Registered just before the reflection servicer: reflection reads descriptors from the default pool, which holds
    a deferred protocol's services only once its module is imported.
    """

    def __init__(self, adapters: Sequence[DeferredAdapter], services: Sequence[str]) -> None:
        self._adapters = tuple(adapters)
        self._prefixes = tuple(f"/{s}/" for s in services)

    def service(self, handler_call_details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler | None:
        """Load the deferred adapters if the call is for one of ``services``; never answers the call itself."""
        if handler_call_details.method.startswith(self._prefixes):
            for adapter in self._adapters:
                adapter.load()
        return None
