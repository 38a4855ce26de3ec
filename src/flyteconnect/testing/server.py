"""ConnectorServer: a real flyteconnect server on a free loopback port, for tests.

It is the production server (``flyteconnect.server.app``) built from its own registry: the same adapters, dispatcher,
error mapping, health and limits Propeller talks to, serving Flyte 1 and, when flyteidl2 is installed, Flyte 2.

``with ConnectorServer(MyConnector()) as server:`` runs it on a background thread with its own event loop (so it
serves while the test blocks, and a connector that blocks cannot freeze the test's loop); ``async with`` runs it on
the current loop instead.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from types import TracebackType
from typing import Any

from flyteconnect.connector import ConnectorBase
from flyteconnect.registry import ConnectorRegistry

__all__ = ["ConnectorServer"]


class ConnectorServer:
    """A flyteconnect server for ``connectors`` (instances, classes or a ConnectorRegistry) on ``127.0.0.1:<free>``.

    ``protocols`` selects ``("v1",)``, ``("v2",)`` or both (default: every available one). ``metrics=True`` also
    starts the Prometheus endpoint on a free port (``metrics_port``). Further keyword arguments set fields of
    ``flyteconnect.server.app.ServerConfig`` (``max_message_size``, ``tls_cert``, ``dispatch``...).
    """

    def __init__(
        self,
        *connectors: ConnectorBase | type[ConnectorBase] | Iterable[Any] | ConnectorRegistry,
        protocols: Sequence[str] | None = None,
        metrics: bool = False,
        **config: Any,
    ) -> None:
        if len(connectors) == 1 and isinstance(connectors[0], ConnectorRegistry):
            self.registry = connectors[0]
        else:
            self.registry = ConnectorRegistry(connectors)
        self._config_kwargs = {
            "host": "127.0.0.1",
            "port": 0,
            "metrics_port": 0 if metrics else None,
            "protocols": tuple(protocols) if protocols is not None else None,
            "grace": 0.0,
            **config,
        }
        self._background: Any = None
        self._server: Any = None

    def _config(self) -> Any:
        from flyteconnect.server.app import ServerConfig

        names = {f.name for f in dataclasses.fields(ServerConfig)}
        unknown = sorted(set(self._config_kwargs) - names)
        if unknown:
            raise TypeError(f"unknown server option(s) {unknown}; see flyteconnect.server.app.ServerConfig")
        return ServerConfig(**self._config_kwargs)

    # -- what tests read --------------------------------------------------------------------------------------------

    @property
    def server(self) -> Any:
        """The running ``flyteconnect.server.app.ConnectorServer`` (dispatcher, metrics...)."""
        if self._background is not None:
            return self._background.server
        if self._server is None:
            raise RuntimeError("the ConnectorServer is not running: use it as a context manager")
        return self._server

    @property
    def port(self) -> int:
        """The bound gRPC port."""
        return int(self.server.port)

    @property
    def address(self) -> str:
        """``127.0.0.1:<port>``: the target for a gRPC channel or a FakePropeller."""
        return f"127.0.0.1:{self.port}"

    @property
    def metrics_port(self) -> int | None:
        """The Prometheus HTTP port, when started with ``metrics=True``."""
        port = self.server.metrics_port
        return None if port is None else int(port)

    @property
    def protocols(self) -> list[str]:
        """The protocols being served (``"v1"``, ``"v2"``)."""
        return [a.name for a in self.server.adapters]

    def propeller(self, **options: Any) -> Any:
        """A ``FakePropeller`` pointed at this server (options as FakePropeller's)."""
        from flyteconnect.testing.propeller import FakePropeller

        return FakePropeller(self.address, **options)

    # -- lifecycle ------------------------------------------------------------------------------------------------

    def start(self) -> ConnectorServer:
        """Start on a background thread; returns once it is serving."""
        from flyteconnect.server.app import BackgroundServer

        if self._background is not None or self._server is not None:
            raise RuntimeError("the ConnectorServer is already running")
        self._background = BackgroundServer(self.registry, self._config()).start()
        return self

    def stop(self) -> None:
        """Stop the background server (in-flight calls are cancelled: tests do not wait for a grace period)."""
        background, self._background = self._background, None
        if background is not None:
            background.stop(grace=0)

    async def astart(self) -> ConnectorServer:
        """Start on the running event loop."""
        from flyteconnect.server.app import ConnectorServer as _Server

        if self._background is not None or self._server is not None:
            raise RuntimeError("the ConnectorServer is already running")
        server = _Server(self.registry, self._config())
        await server.start()
        self._server = server
        return self

    async def astop(self) -> None:
        """Stop the server started by ``astart``."""
        server, self._server = self._server, None
        if server is not None:
            await server.stop(grace=0)

    def __enter__(self) -> ConnectorServer:
        return self.start()

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    async def __aenter__(self) -> ConnectorServer:
        return await self.astart()

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.astop()

    def __repr__(self) -> str:
        running = self._background is not None or self._server is not None
        where = self.address if running else "stopped"
        return f"<ConnectorServer {where} {self.registry!r}>"
