"""What both wire adapters share: raw-bytes request parsing, aborting with a ``CallFailed``, and registering a
servicer's methods as generic handlers.

Requests arrive as raw bytes (handlers are registered without a deserializer) so that a malformed message is an
INVALID_ARGUMENT naming the message, not grpc's INTERNAL "Exception deserializing request!". ``parse`` also passes a
parsed request proto through, so servicer methods can be called directly.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, Generic, NoReturn, TypeVar

import grpc
from google.protobuf.message import DecodeError, Message

from flyteconnect.server.errors import CallFailed

__all__ = [
    "SERIALIZED",
    "GenericOnly",
    "Handler",
    "SnapshotReply",
    "abort",
    "add_services",
    "bidi_stream",
    "parse",
    "server_stream",
    "unary",
]

M = TypeVar("M", bound=Message)

Handler = tuple[str, grpc.RpcMethodHandler]
"""A method name and its handler, as ``add_services`` takes them."""


def parse(cls: type[M], raw: Any) -> M:
    """Parse raw request bytes (or pass a parsed message through); CallFailed(INVALID_ARGUMENT) on garbage."""
    if type(raw) is not bytes:
        return raw  # type: ignore[no-any-return]
    try:
        parsed: M = cls.FromString(raw)
        return parsed
    except (DecodeError, ValueError, RuntimeError) as e:
        raise CallFailed(grpc.StatusCode.INVALID_ARGUMENT, f"malformed {cls.DESCRIPTOR.name}: {e}") from None


async def abort(context: grpc.aio.ServicerContext, e: CallFailed) -> NoReturn:
    """End the call with the failure's status and details (raises, as ``context.abort`` does)."""
    await context.abort(e.code, e.details)
    raise AssertionError("context.abort returned")  # pragma: no cover - grpc's abort always raises


SERIALIZED = None
"""The ``response`` of a method answering serialized reply bytes itself (``replies``): grpc sends them as they are."""


def _handler(
    kind: Callable[..., grpc.RpcMethodHandler], method: Callable[..., Any], response: type[Message] | None
) -> Handler:
    # The method's own name is its gRPC name: the servicers name their methods after the RPCs.
    serializer = None if response is SERIALIZED else response.SerializeToString
    return method.__name__, kind(method, request_deserializer=None, response_serializer=serializer)


def unary(method: Callable[..., Any], response: type[Message] | None) -> Handler:
    """A unary-unary RPC served by the bound servicer ``method`` (raw request bytes in; replies of type
    ``response``, or bytes with ``SERIALIZED``)."""
    return _handler(grpc.unary_unary_rpc_method_handler, method, response)


def server_stream(method: Callable[..., Any], response: type[Message] | None) -> Handler:
    """A unary-stream RPC served by the async generator ``method``."""
    return _handler(grpc.unary_stream_rpc_method_handler, method, response)


def bidi_stream(method: Callable[..., Any], response: type[Message] | None) -> Handler:
    """A stream-stream RPC served by the async generator ``method``."""
    return _handler(grpc.stream_stream_rpc_method_handler, method, response)


class GenericOnly:
    """A server stand-in for generated ``add_*Servicer_to_server`` functions: keeps their generic handlers only.

    Generated code registers each service twice: as a generic handler and as "registered methods". grpc.aio's
    accept loop keeps one pending accept per registered method and ``asyncio.wait``s on all of them for every
    incoming call, so each registered method (health has two, reflection one) adds work to *every* call on the
    server, not only to its own. The generic handler serves the same methods.
    """

    def __init__(self, server: grpc.aio.Server) -> None:
        self._server = server

    def add_generic_rpc_handlers(self, handlers: Iterable[grpc.GenericRpcHandler]) -> None:
        """Forward to the real server."""
        self._server.add_generic_rpc_handlers(tuple(handlers))

    def add_registered_method_handlers(self, service: str, handlers: Mapping[str, grpc.RpcMethodHandler]) -> None:
        """Drop: the generic handler added just before covers these methods."""


class SnapshotReply(Generic[M]):
    """A reply built from ``Dispatcher.list_connectors()`` once per registry snapshot (the tuple's identity).

    Propeller polls the metadata services; the reply is shared and read-only (grpc only serializes it).
    """

    def __init__(self, build: Callable[[Any], M]) -> None:
        self._build = build
        self._infos: Any = None
        self._reply: M | None = None

    def get(self, infos: Any) -> M:
        """The reply for ``infos``, rebuilt only when they are not the tuple it was built from."""
        if self._reply is None or infos is not self._infos:
            self._reply, self._infos = self._build(infos), infos
        return self._reply


def add_services(server: grpc.aio.Server, services: Mapping[str, Iterable[Handler]]) -> None:
    """Register each service's handlers on ``server`` as generic handlers.

    Generic handlers only, never registered methods: see ``GenericOnly``.
    """
    for service, handlers in services.items():
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(service, dict(handlers)),))
