"""The exceptions connector authors raise and callers catch.

A small tree, in the spirit of Temporal's SDK: one base class, a few kinds that the server maps to a gRPC status in
one place (``flyteconnect.server.errors``), and a ``retryable`` flag instead of a zoo of classes.

    FlyteConnectError
    ├── ConnectorNotFound      no connector serves this task category / name       → NOT_FOUND
    ├── InvalidRequest         malformed resource_meta, inputs or stream           → INVALID_ARGUMENT
    │   ├── ResourceMetaError  resource_meta bytes that do not decode
    │   └── LiteralError       a value or literal that does not match its type
    └── ConnectorError         the connector or its external system failed         → INTERNAL
        └── TransientError     the external system is briefly unavailable           → UNAVAILABLE
"""

from __future__ import annotations

__all__ = [
    "ConnectorError",
    "ConnectorNotFound",
    "FlyteConnectError",
    "InvalidRequest",
    "LiteralError",
    "ResourceMetaError",
    "TransientError",
]


class FlyteConnectError(Exception):
    """Base class of every error flyteconnect raises on purpose."""


class ConnectorNotFound(FlyteConnectError, LookupError):
    """No connector is registered for the requested task category or connector name."""


class InvalidRequest(FlyteConnectError, ValueError):
    """The caller sent something that cannot be understood (bad bytes, bad inputs, misuse of a stream)."""


class ResourceMetaError(InvalidRequest):
    """resource_meta bytes that are not valid for the connector's metadata type."""


class LiteralError(InvalidRequest, TypeError):
    """A Python value or Flyte literal that does not match the type it is declared or read as."""


class ConnectorError(FlyteConnectError):
    """The connector, or the system it drives, failed.

    ``retryable`` tells the caller whether trying again can help; ``code`` is an optional short machine-readable code
    (it becomes ``agent_error.code`` on the Flyte 1 wire).
    """

    def __init__(self, message: str, *, retryable: bool = False, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.retryable = retryable
        self.code = code


class TransientError(ConnectorError):
    """The external system is briefly unavailable (throttled, network blip, 5xx); trying again soon should work."""

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message, retryable=True, code=code)
