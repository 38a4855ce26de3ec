"""What both protocol adapters share: the one error boundary of a servicer method, and request reading.

**One boundary.** A servicer method is written as a plain function that reads the request and returns the
dispatcher's awaitable (``start(self, request, context)``); ``rpc(start)`` makes it the servicer method, and a
``CallFailed`` raised while reading or running ends the call with its status (``context.abort``). Statuses come from
``server.errors.to_status`` (the pipeline maps and logs every failure): adapters never map an exception themselves.
The boundary is the servicer method's own coroutine, so it costs no extra coroutine per call. ``stream_rpc`` does the
same for a server stream, ``client_stream_rpc`` for ExecuteTaskSync's shape (read the client's stream, one reply).

**Request reading.** ``PollReader``: a Get/Delete-shaped request's routing key and resource_meta, remembered by the
request's bytes (Propeller polls a job with the same bytes every time; a request carrying per-request secrets is never
remembered). ``template_of``: a shallow request's template bytes as the ``TaskTemplate`` view (memoized by its bytes;
malformed ones are INVALID_ARGUMENT) and its routing key.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import grpc

from flyteconnect.errors import InvalidRequest
from flyteconnect.memo import remember
from flyteconnect.models import TaskTemplate
from flyteconnect.server.errors import CallFailed
from flyteconnect.server.grpc_util import abort

__all__ = ["PollReader", "Routed", "client_stream_rpc", "rpc", "stream_rpc", "template_of"]

S = TypeVar("S")
R = TypeVar("R")
Key = tuple[str, int]
Routed = tuple[Key, bytes, Any]
"""A Get/Delete request read: (routing key, resource_meta, the request's connection or None)."""


def rpc(start: Callable[[S, Any, grpc.aio.ServicerContext], Awaitable[R]]) -> Callable[..., Awaitable[R]]:
    """The unary servicer method running ``start``'s awaitable, a ``CallFailed`` becoming the call's status."""

    @functools.wraps(start)
    async def method(self: S, request: Any, context: grpc.aio.ServicerContext) -> R:
        try:
            return await start(self, request, context)
        except CallFailed as e:
            await abort(context, e)

    method.__name__ = start.__name__.lstrip("_")
    return method


def stream_rpc(start: Callable[[S, Any, grpc.aio.ServicerContext], AsyncIterator[R]]) -> Callable[..., Any]:
    """The server-streaming servicer method yielding ``start``'s items, a ``CallFailed`` becoming the status."""

    @functools.wraps(start)
    async def method(self: S, request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[R]:
        try:
            async for item in start(self, request, context):
                yield item
        except CallFailed as e:
            await abort(context, e)

    method.__name__ = start.__name__.lstrip("_")
    return method


def client_stream_rpc(
    read: Callable[[S, Any, grpc.aio.ServicerContext], Awaitable[Any]],
    start: Callable[[S, Any, grpc.aio.ServicerContext], Awaitable[R]],
) -> Callable[..., Any]:
    """A bidi servicer method that reads the client's messages (``read``), then answers ``start(parts)``'s one
    reply; a ``CallFailed`` from either becomes the status."""

    @functools.wraps(start)
    async def method(self: S, request_iterator: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[R]:
        try:
            parts = await read(self, request_iterator, context)
            reply = await start(self, parts, context)
        except CallFailed as e:
            await abort(context, e)
            return
        yield reply

    method.__name__ = start.__name__.lstrip("_")
    return method


class PollReader:
    """Reads Get/Delete-shaped requests with ``parse(raw_or_proto) -> Routed``, remembering them by their bytes.

    ``memo`` is public so the hot path can look a request up without a call (``reader.memo.get(raw)``); ``read`` is
    the miss. Bounded (``limit`` requests, the oldest forgotten first); requests with a connection are not kept.
    """

    LIMIT = 4096

    def __init__(self, parse: Callable[[Any], Routed]) -> None:
        self._parse = parse
        self.memo: dict[bytes, Routed] = {}

    def read(self, request: Any, limit: int = LIMIT) -> Routed:
        """``request``'s routing key, resource_meta and connection (parsed, or remembered)."""
        if type(request) is bytes:
            seen = self.memo.get(request)
            if seen is not None:
                return seen
        found = self._parse(request)
        if type(request) is bytes and found[2] is None:
            remember(self.memo, request, found, limit)
        return found


def template_of(raw: bytes) -> tuple[TaskTemplate, Key]:
    """The ``TaskTemplate`` view of a request's template bytes and its routing key (type, version); malformed bytes
    are INVALID_ARGUMENT."""
    try:
        template = TaskTemplate.from_bytes(raw)
        return template, (template.type, template.task_type_version)
    except InvalidRequest as e:
        raise CallFailed(grpc.StatusCode.INVALID_ARGUMENT, str(e)) from None
