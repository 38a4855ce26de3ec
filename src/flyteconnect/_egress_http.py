"""The httpx side of ``flyteconnect.egress``: a network backend that dials only addresses the policy allows.

Imported on the first ``http_client()`` call, so httpx and httpcore load only in processes that fetch URLs.

httpcore opens every connection through its network backend's ``connect_tcp(host, port)``, with ``host`` the URL's
host name. ``_PolicyBackend`` resolves that name itself, checks every address, and dials a checked address; TLS still
verifies against the name, because httpcore passes the URL host as SNI/server_hostname to ``start_tls`` and the Host
header is the request's. A redirect is a new request through the same transport, so every hop is checked; a pooled
connection is reused only for its own origin, which was checked when it was opened.

httpx (0.28) has no public argument for the network backend of its default transport (encode/httpx#3749 proposes
one), so ``_PolicyTransport`` replaces the connection pool ``AsyncHTTPTransport`` builds with one that uses ours. The
webhook and egress tests fail loudly if a future httpx stops honouring it (loopback requests would get through).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import httpcore
import httpx

from flyteconnect.egress import RESOLVE_TIMEOUT, EgressPolicy, current_policy
from flyteconnect.errors import TransientError

_TRANSPORT_KWARGS = ("verify", "cert", "trust_env", "http1", "http2", "limits")
_AROUND_POLICY = ("transport", "mounts", "proxy", "proxies", "app")


class _PolicyBackend(httpcore.AsyncNetworkBackend):
    """Resolves, checks, then connects to a checked address; Unix sockets are refused."""

    def __init__(self, policy: EgressPolicy | None) -> None:
        self._policy = policy
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        policy = self._policy if self._policy is not None else current_policy()
        # A connect never waits forever: no timeout from the caller means the resolver's default.
        timeout = timeout if timeout is not None else RESOLVE_TIMEOUT
        try:
            addresses = await policy.resolve(host, port, timeout)
        except TransientError as e:  # an unknown name is a connect error to httpx users, as with httpx's own backend
            raise httpcore.ConnectError(str(e)) from None
        error: Exception | None = None
        for address in addresses:  # in resolver order, one after the other (a short happy-eyeballs)
            try:
                return await self._inner.connect_tcp(address, port, timeout, local_address, socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as e:
                error = e
        assert error is not None  # resolve() returns at least one address
        raise error

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("the egress policy does not allow Unix sockets")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class _PolicyTransport(httpx.AsyncHTTPTransport):
    """``httpx.AsyncHTTPTransport`` whose connections go through ``_PolicyBackend``."""

    def __init__(self, policy: EgressPolicy | None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        limits: httpx.Limits = kwargs.get("limits", httpx.Limits(max_connections=100, max_keepalive_connections=20))
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(
                verify=kwargs.get("verify", True), cert=kwargs.get("cert"), trust_env=kwargs.get("trust_env", True)
            ),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            http1=kwargs.get("http1", True),
            http2=kwargs.get("http2", False),
            network_backend=_PolicyBackend(policy),
        )


def make_client(policy: EgressPolicy | None, kwargs: dict[str, Any]) -> httpx.AsyncClient:
    """``egress.http_client``'s body (see there)."""
    around = sorted(k for k in _AROUND_POLICY if k in kwargs)
    if around:
        raise TypeError(f"http_client() does not take {', '.join(around)}: it would connect around the egress policy")
    transport_kwargs = {k: kwargs[k] for k in _TRANSPORT_KWARGS if k in kwargs}
    client_kwargs = {k: v for k, v in kwargs.items() if k not in _TRANSPORT_KWARGS or k == "trust_env"}
    return httpx.AsyncClient(transport=_PolicyTransport(policy, **transport_kwargs), **client_kwargs)
