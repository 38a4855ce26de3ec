"""Build and run the grpc.aio connector server: protocol adapters, health, reflection, metrics, TLS and drain.

Library use (what ``flyteconnect serve`` and the testing kit do)::

    server = ConnectorServer(registry, ServerConfig(port=0, metrics_port=0))
    port = await server.start()          # bound port; health SERVING
    ...
    await server.stop()                  # health NOT_SERVING, finish in-flight calls within ``grace``

    with serve_in_thread(registry, ServerConfig(port=0)) as handle:   # a server on its own loop thread
        channel = grpc.insecure_channel(handle.address)

Protocols are pluggable: an adapter has ``name``, ``service_names`` and ``add_to_server(server, dispatcher)``;
``PROTOCOLS`` maps a protocol name to ``"module:attribute"`` of its adapter, loaded only when selected. By default
every protocol whose module imports is served (v2 is skipped without flyteidl2); naming protocols explicitly makes
each of them required. A default protocol listed in ``DEFERRED`` (v2) is imported on its first call rather than at
start (``flyteconnect.server.deferred``): start-up pays only for the protocol most servers are called with.
"""

from __future__ import annotations

import asyncio
import gc
import importlib
import importlib.util
import logging
import signal
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from flyteconnect.loops import close_loop_resources
from flyteconnect.registry import ConnectorRegistry
from flyteconnect.server.deferred import Collector, DeferredAdapter, DeferredHandler
from flyteconnect.server.dispatch import DispatchConfig, Dispatcher
from flyteconnect.server.grpc_util import GenericOnly
from flyteconnect.server.limits import Admission, GuardedHandlers, Limits, grpc_options, grpc_rpc_cap
from flyteconnect.server.metrics import ServerMetrics
from flyteconnect.state import StateStore, open_store

if TYPE_CHECKING:
    from flyteconnect.server.callback_server import CallbackConfig, CallbackServer

__all__ = [
    "DEFERRED",
    "PROTOCOLS",
    "READINESS_SERVICE",
    "BackgroundServer",
    "ConnectorServer",
    "ProtocolAdapter",
    "ServerConfig",
    "load_adapters",
    "serve_in_thread",
]

log = logging.getLogger("flyteconnect.server")

PROTOCOLS: dict[str, str] = {
    "v1": "flyteconnect.server.flyteidl_v1:ADAPTER",
    "v2": "flyteconnect.server.flyteidl_v2:ADAPTER",
}
"""Protocol name → ``module:attribute`` of its adapter."""

DEFERRED: dict[str, tuple[str, tuple[str, ...]]] = {
    "v2": (
        "flyteidl2.connector.service_pb2",
        ("flyteidl2.connector.AsyncConnectorService", "flyteidl2.connector.ConnectorMetadataService"),
    ),
}
"""Default protocols loaded on first use: name → (module that must be installed, the adapter's service names)."""

READINESS_SERVICE = "flyteconnect.Connectors"
"""Health service name answering SERVING only when every connector source the server was given loaded: with
``serve --keep-going`` a server serves the rest while this answers NOT_SERVING (``ConnectorServer.load_problems``)."""

DEFAULT_MAX_MESSAGE = 64 * 1024 * 1024
REFLECTION_SERVICE = "grpc.reflection.v1alpha.ServerReflection"
"""``grpc_reflection.v1alpha.reflection.SERVICE_NAME``, known without importing it."""


class ProtocolAdapter(Protocol):
    """Registers one wire protocol's services on a server, on top of the shared dispatcher."""

    name: str
    service_names: Sequence[str]

    def add_to_server(self, server: grpc.aio.Server, dispatcher: Dispatcher) -> None:
        """Add the protocol's servicers to ``server``."""


@dataclass
class ServerConfig:
    """How to serve: address, protocols, limits, TLS, metrics, drain, and the dispatcher settings."""

    host: str = "[::]"
    port: int = 8000
    metrics_port: int | None = 9090
    """Prometheus HTTP port (0 picks a free one; None disables)."""
    metrics_host: str = "0.0.0.0"
    metrics_dir: str | None = None
    """Write the metrics to a file in this folder every second and on stop instead of serving them (a ``--workers``
    worker: its supervisor serves every worker's metrics on one endpoint, ``server.worker_metrics``)."""
    protocols: Sequence[str] | None = None
    """None: every available protocol (v1, and v2 when flyteidl2 is installed)."""
    max_message_size: int = DEFAULT_MAX_MESSAGE
    grace: float = 30.0
    """Seconds in-flight calls may take to finish after a stop request."""
    tls_cert: str | None = None
    tls_key: str | None = None
    tls_client_ca: str | None = None
    """Require and verify client certificates signed by this CA (mutual TLS)."""
    reflection: bool = True
    reuse_port: bool = False
    """Let several processes bind the port (SO_REUSEPORT); set by the ``--workers`` supervisor."""
    limits: Limits = field(default_factory=Limits)
    """Connections, streams, keepalive, calls and reply bytes in flight (``server.limits``)."""
    tune_gc: bool = False
    """After start, freeze the objects loaded so far (``gc.freeze``), collect less often and enable the collector:
    it then never rescans the large, long-lived heap of protos and modules. Process-wide, so ``flyteconnect serve``
    turns it on (it owns its process, and keeps the collector off while it starts) and library users decide."""
    dispatch: DispatchConfig = field(default_factory=DispatchConfig)
    state_url: str | None = None
    """Where policies keep what outlives a call: None or ``memory://`` in this process, ``redis://HOST:PORT/DB``
    shared by replicas (``flyteconnect.state.open_store``)."""
    callback: CallbackConfig | None = None
    """Serve completion callbacks on their own HTTP port (None: off; ``flyteconnect.callbacks``)."""


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def load_adapters(names: Sequence[str] | None, *, defer: bool = False) -> list[ProtocolAdapter]:
    """Import the adapters of ``names`` (all of PROTOCOLS when None, skipping those whose module cannot import).

    With ``defer`` and ``names`` None, the protocols of ``DEFERRED`` that are installed become ``DeferredAdapter``s
    (imported on first call) instead of being imported now.
    """
    required = names is not None
    adapters: list[ProtocolAdapter] = []
    for name in names if names is not None else list(PROTOCOLS):
        target = PROTOCOLS.get(name)
        if target is None:
            raise ValueError(f"unknown protocol {name!r}; known: {', '.join(PROTOCOLS)}")
        if defer and not required and name in DEFERRED:
            requires, services = DEFERRED[name]
            if _installed(requires):
                adapters.append(DeferredAdapter(name, target, services))
            else:
                log.info("protocol %s not served: %s is not installed", name, requires)
            continue
        module_name, attr = target.split(":")
        try:
            module = importlib.import_module(module_name)
        except ImportError as e:
            if required:
                raise RuntimeError(f"protocol {name} is unavailable: {e}") from e
            log.info("protocol %s not served: %s", name, e)
            continue
        adapters.append(getattr(module, attr))
    if not adapters:
        raise RuntimeError("no protocol to serve")
    return adapters


def _options(config: ServerConfig) -> list[tuple[str, Any]]:
    size = config.max_message_size
    return [
        ("grpc.max_receive_message_length", size),
        ("grpc.max_send_message_length", size),
        # One process per port unless the supervisor asked for sharing: a second server on a busy port must fail.
        ("grpc.so_reuseport", 1 if config.reuse_port else 0),
        *grpc_options(config.limits),
    ]


def _read(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def _credentials(config: ServerConfig) -> grpc.ServerCredentials | None:
    if not (config.tls_cert or config.tls_key):
        if config.tls_client_ca:
            raise ValueError("--tls-client-ca needs --tls-cert and --tls-key")
        return None
    if not (config.tls_cert and config.tls_key):
        raise ValueError("TLS needs both --tls-cert and --tls-key")
    cert = _read(config.tls_cert)
    key = _read(config.tls_key)
    ca = _read(config.tls_client_ca) if config.tls_client_ca else None
    return grpc.ssl_server_credentials([(key, cert)], root_certificates=ca, require_client_auth=ca is not None)


def _tune_gc() -> None:
    # No gc.collect() first: start-up leaves a few hundred unreachable objects (measured: ~600 of a 50k heap), not
    # worth a full collection (10-15 ms) in front of the first answer. The documented gc.freeze pattern: collector
    # off while loading (``flyteconnect serve`` does that), freeze, collector on.
    gc.freeze()
    # Young collections every 10k allocations instead of 700: request garbage is short-lived and acyclic.
    gc.set_threshold(10_000, 50, 100)
    gc.enable()


class ConnectorServer:
    """One grpc.aio server serving ``registry`` with the selected protocols."""

    def __init__(
        self,
        registry: ConnectorRegistry,
        config: ServerConfig | None = None,
        metrics: ServerMetrics | None = None,
        load_problems: Sequence[str] = (),
    ) -> None:
        self.registry = registry
        self.load_problems = tuple(load_problems)
        """What failed to load (one line each); health's READINESS_SERVICE answers NOT_SERVING while there is any."""
        self.config = config or ServerConfig()
        self.metrics = metrics or ServerMetrics()
        self.state: StateStore = open_store(self.config.state_url)
        """The state store the server's policies and callbacks share."""
        self.callbacks: CallbackServer | None = None
        if self.config.callback is not None:
            from flyteconnect.server.callback_server import CallbackServer

            self.callbacks = CallbackServer(self.config.callback, self.state, shared=self.state.shared)
        # Policies find the store and the callback server here (server.pipeline.job_state: STATE, CALLBACKS).
        shared: dict[str, Any] = {"state": self.state, "callbacks": self.callbacks}
        self.dispatcher = Dispatcher(registry, self.config.dispatch, self.metrics, shared)
        self.admission = Admission(self.config.limits)
        self._admission_exported = False
        self.adapters = load_adapters(self.config.protocols, defer=True)
        self.port: int = 0
        self.metrics_port: int | None = None
        self._server: grpc.aio.Server | None = None
        self._health: Any = None
        self._httpd: Any = None
        self._snapshots: Any = None
        self._stopped: asyncio.Event | None = None

    @property
    def service_names(self) -> list[str]:
        """Every gRPC service this server answers (for health and reflection)."""
        return [n for a in self.adapters for n in a.service_names]

    @property
    def callback_port(self) -> int | None:
        """The bound port of the callback server (None when callbacks are off)."""
        return None if self.callbacks is None else self.callbacks.port

    async def _start_state(self) -> None:
        """Check the state store answers, then start the callback server when configured."""
        try:
            await self.state.ping()
        except Exception as e:  # redis-py's connection errors: say which store, never its password
            raise OSError(f"state store {self.state.describe()} is unreachable: {e}") from None
        if self.callbacks is not None:
            await self.callbacks.start()

    async def start(self) -> int:
        """Bind, start serving and mark health SERVING; returns the bound port."""
        await self._start_state()
        try:
            return await self._start_grpc()
        except BaseException:
            if self.callbacks is not None:
                await self.callbacks.stop()
            await self.state.close()
            raise

    async def _start_grpc(self) -> int:
        config = self.config
        server = grpc.aio.server(options=_options(config), maximum_concurrent_rpcs=grpc_rpc_cap(config.limits))
        # Every service but health sits behind the call limits; health is registered beside them so it answers
        # while connector calls are refused (the guard first: the connector calls are the ones looked up most).
        guarded = GuardedHandlers(self.admission)
        server.add_generic_rpc_handlers((guarded,))
        for adapter in self.adapters:
            adapter.add_to_server(guarded, self.dispatcher)  # type: ignore[arg-type]  # the server's stand-in
        self._health = health.aio.HealthServicer()
        generic = GenericOnly(server)  # registered methods would tax every call (see GenericOnly)
        health_pb2_grpc.add_HealthServicer_to_server(self._health, generic)
        if config.reflection:  # loaded on its first call: grpc_reflection and its protos cost start-up time
            names = [*self.service_names, health.SERVICE_NAME, REFLECTION_SERVICE]
            deferred = [a for a in self.adapters if isinstance(a, DeferredAdapter)]

            def reflection_servicer(collector: Collector) -> None:
                from grpc_reflection.v1alpha import reflection, reflection_pb2_grpc

                for adapter in deferred:  # reflection answers from the descriptor pool: their protos first
                    adapter.load()
                servicer = reflection.aio.ReflectionServicer(names)
                reflection_pb2_grpc.add_ServerReflectionServicer_to_server(servicer, collector)

            guarded.add_generic_rpc_handlers(
                (DeferredHandler([REFLECTION_SERVICE], reflection_servicer, "server reflection"),)
            )
        address = f"{config.host}:{config.port}"
        credentials = _credentials(config)
        try:
            if credentials is None:
                port = server.add_insecure_port(address)
            else:
                port = server.add_secure_port(address, credentials)
        except RuntimeError as e:
            raise OSError(f"cannot listen on {address}: {e}") from None
        if port == 0:
            raise OSError(f"cannot listen on {address} (port in use?)")
        try:
            self._start_metrics()  # before serving: a busy metrics port stops the start, nothing was answered yet
        except OSError:
            await server.stop(0)
            raise
        await server.start()
        self._server = server
        self.port = port = int(port)
        self._stopped = asyncio.Event()
        self.dispatcher.start()
        await self._set_health(health_pb2.HealthCheckResponse.SERVING)
        if config.tune_gc:
            _tune_gc()
        return port

    async def _set_health(self, status: Any) -> None:
        # Serving no connector at all is not ready; a source that failed to load shows on READINESS_SERVICE.
        overall = status if self.registry.connectors() else health_pb2.HealthCheckResponse.NOT_SERVING
        complete = status if not self.load_problems else health_pb2.HealthCheckResponse.NOT_SERVING
        for name in [*self.service_names, health.SERVICE_NAME]:
            await self._health.set(name, status)
        await self._health.set("", overall)
        await self._health.set(READINESS_SERVICE, complete)

    def _start_metrics(self) -> None:
        config = self.config
        if config.metrics_dir is None and config.metrics_port is None:
            return  # prometheus-client is never imported
        if not self._admission_exported:  # once: a registry refuses the same collector twice
            self.metrics.registry.register(self.admission)  # type: ignore[arg-type]
            self._admission_exported = True
        if config.metrics_dir is not None:
            from flyteconnect.server.worker_metrics import SnapshotWriter

            self._snapshots = SnapshotWriter(self.metrics.registry, config.metrics_dir).start()
        port = config.metrics_port
        if port is None:
            return
        from prometheus_client import start_http_server

        try:
            httpd, _thread = start_http_server(port, addr=config.metrics_host, registry=self.metrics.registry)
        except OSError as e:
            raise OSError(f"cannot serve metrics on {config.metrics_host}:{port} (--metrics-port {port}): {e}") from e
        self._httpd = httpd
        self.metrics_port = int(httpd.server_port)

    async def stop(self, grace: float | None = None) -> None:
        """Drain: health NOT_SERVING, refuse new calls, let in-flight ones finish within ``grace`` seconds."""
        server = self._server
        if server is None:
            return
        self._server = None
        if self._health is not None:
            await self._health.enter_graceful_shutdown()
        await server.stop(self.config.grace if grace is None else grace)
        if self.callbacks is not None:
            await self.callbacks.stop()
        # Connectors' per-loop clients (httpx, psycopg pools) close on this loop, after the last call finished.
        await close_loop_resources()
        await self.state.close()
        httpd, self._httpd = self._httpd, None
        if httpd is not None:
            # shutdown() waits for the serving thread's poll interval (~0.5 s): never on the event loop.
            await asyncio.to_thread(httpd.shutdown)
            httpd.server_close()
        snapshots, self._snapshots = self._snapshots, None
        if snapshots is not None:
            await asyncio.to_thread(snapshots.stop)  # the last counts reach the supervisor's endpoint
        self.dispatcher.close()
        if self._stopped is not None:
            self._stopped.set()

    async def wait_stopped(self) -> None:
        """Return once ``stop`` has completed."""
        if self._stopped is not None:
            await self._stopped.wait()

    async def serve_forever(self, signals: Sequence[int] = (signal.SIGTERM, signal.SIGINT)) -> None:
        """Start if needed, serve until one of ``signals`` arrives, then drain within the grace period."""
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for sig in signals:
            loop.add_signal_handler(sig, stop.set)
        try:
            await self.serve_until(stop)
        finally:
            for sig in signals:
                loop.remove_signal_handler(sig)

    async def serve_until(self, stop: asyncio.Event) -> None:
        """Start if needed, serve until ``stop`` is set (it may be already), then drain within the grace period."""
        if self._server is None:
            await self.start()
        await stop.wait()
        log.info("stop requested: draining in-flight calls (grace %.1fs)", self.config.grace)
        await self.stop()

    async def __aenter__(self) -> ConnectorServer:
        await self.start()
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop(grace=0)


class BackgroundServer:
    """A ``ConnectorServer`` running on its own event-loop thread (for tests and notebooks)."""

    def __init__(self, registry: ConnectorRegistry, config: ServerConfig | None = None) -> None:
        self.loop = asyncio.new_event_loop()
        self.server = ConnectorServer(registry, config)
        self._thread = threading.Thread(target=self.loop.run_forever, name="flyteconnect-server", daemon=True)
        self._started = False

    @property
    def port(self) -> int:
        """The bound gRPC port."""
        return int(self.server.port)

    @property
    def address(self) -> str:
        """``127.0.0.1:PORT``, for a client channel."""
        return f"127.0.0.1:{self.port}"

    def start(self) -> BackgroundServer:
        """Start the thread and the server; returns once it is serving (no-op when already started).

        ``with serve_in_thread(...)`` enters an already started server: that must not start it twice. A stopped
        one cannot start again (its loop is closed): make a new ``BackgroundServer``.
        """
        if self.loop.is_closed():
            raise RuntimeError("this BackgroundServer was stopped; create a new one to serve again")
        if self._started:
            return self
        self._started = True
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self.server.start(), self.loop).result(timeout=30)
        return self

    def stop(self, grace: float | None = 0) -> None:
        """Stop the server and the thread."""
        if self._thread.is_alive():
            asyncio.run_coroutine_threadsafe(self.server.stop(grace), self.loop).result(timeout=60)
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(timeout=10)
        if not self._thread.is_alive() and not self.loop.is_closed():
            self.loop.close()

    def __enter__(self) -> BackgroundServer:
        return self.start()

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()


def serve_in_thread(registry: ConnectorRegistry, config: ServerConfig | None = None) -> BackgroundServer:
    """A started ``BackgroundServer`` (use as a context manager, or call ``stop()``)."""
    return BackgroundServer(registry, config).start()
