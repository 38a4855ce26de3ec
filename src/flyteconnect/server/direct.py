"""Servicers called directly, without a server: what flytekit's tests and tools do with its servicers.

``AsyncConnectorService()`` (no dispatcher) serves the process default ``ConnectorRegistry`` and answers as
flytekit's servicers do when called directly: response protos rather than the serialized replies the server sends,
``await GetTaskLogs(...)`` giving the first page (it is still an async iterator of every page), and any
``grpc.ServicerContext`` accepted, a test's mock included (its deadline is used only when it is a number). A failure
raises ``DirectCallFailed`` with the status the server would send, after setting it on the context.

Only servicers built without a dispatcher get these wrappers: the server's own keep their hot path untouched.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Awaitable, Callable, Generator
from typing import Any

import grpc
from flyteidl.admin import agent_pb2

from flyteconnect.server.dispatch import Dispatcher

__all__ = ["DirectCallFailed", "attach"]


class DirectCallFailed(Exception):
    """A directly called servicer method failed; ``code`` is the gRPC status the server would answer."""

    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(f"{code.name}: {details}")
        self.code = code
        self.details = details


class _Context:
    """The caller's context, with a deadline only when it has a real one and an ``abort`` that raises."""

    def __init__(self, context: Any) -> None:
        self._context = context

    def time_remaining(self) -> float | None:
        remaining = getattr(self._context, "time_remaining", lambda: None)()
        return float(remaining) if isinstance(remaining, (int, float)) else None

    async def abort(self, code: grpc.StatusCode, details: str) -> None:
        for setter, value in (("set_code", code), ("set_details", details)):
            method = getattr(self._context, setter, None)
            if callable(method):
                method(value)
        raise DirectCallFailed(code, details)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._context, name)


def _unary(method: Callable[..., Awaitable[Any]], response: type[Any]) -> Callable[..., Awaitable[Any]]:
    @functools.wraps(method)
    async def call(request: Any, context: Any = None) -> Any:
        reply = await method(request, _Context(context))
        return response.FromString(reply) if isinstance(reply, bytes) else reply

    return call


class _Pages:
    """GetTaskLogs called directly: awaitable (the first page, as flytekit answers) and async-iterable (all)."""

    def __init__(self, pages: AsyncIterator[Any]) -> None:
        self._pages = pages

    def __aiter__(self) -> AsyncIterator[Any]:
        return self._pages

    def __await__(self) -> Generator[Any, None, Any]:
        return self._first().__await__()

    async def _first(self) -> Any:
        async for page in self._pages:
            await self._pages.aclose()  # type: ignore[attr-defined]
            return page
        return agent_pb2.GetTaskLogsResponse()


def _logs(method: Callable[..., AsyncIterator[Any]]) -> Callable[..., _Pages]:
    @functools.wraps(method)
    def call(request: Any, context: Any = None) -> _Pages:
        return _Pages(method(request, _Context(context)))

    return call


def _execute(method: Callable[..., AsyncIterator[Any]]) -> Callable[..., AsyncIterator[Any]]:
    @functools.wraps(method)
    async def call(request_iterator: Any, context: Any = None) -> AsyncIterator[Any]:
        async for reply in method(request_iterator, _Context(context)):
            yield agent_pb2.ExecuteTaskSyncResponse.FromString(reply) if isinstance(reply, bytes) else reply

    return call


def attach(servicer: Any) -> Dispatcher:
    """Give ``servicer`` (built without a dispatcher) the direct-call wrappers; returns the dispatcher to use."""
    from flyteconnect.registry import ConnectorRegistry

    wrappers: dict[str, Callable[[Any], Any]] = {
        "CreateTask": lambda m: _unary(m, agent_pb2.CreateTaskResponse),
        "GetTask": lambda m: _unary(m, agent_pb2.GetTaskResponse),
        "DeleteTask": lambda m: _unary(m, agent_pb2.DeleteTaskResponse),
        "GetTaskMetrics": lambda m: _unary(m, agent_pb2.GetTaskMetricsResponse),
        "GetAgent": lambda m: _unary(m, agent_pb2.GetAgentResponse),
        "ListAgents": lambda m: _unary(m, agent_pb2.ListAgentsResponse),
        "GetTaskLogs": _logs,
        "ExecuteTaskSync": _execute,
    }
    for name, wrap in wrappers.items():
        method = getattr(servicer, name, None)
        if method is not None:
            setattr(servicer, name, wrap(method))
    return Dispatcher(ConnectorRegistry.default())
