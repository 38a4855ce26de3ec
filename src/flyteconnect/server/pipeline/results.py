"""What a connector may return, per operation: checked here, so a bad result is the connector's bug (INTERNAL)
naming it, never a crash in the adapter."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from flyteconnect.connector import Phase, Resource, ResourceMeta
from flyteconnect.server.errors import ConnectorBug

if TYPE_CHECKING:
    from flyteconnect.server.dispatch import Entry

__all__ = ["CHECKS", "TERMINAL", "Check"]

Check = Callable[["Entry", str, "Callable[[Any], Any] | None", Any], Any]
"""``check(entry, operation, convert, result)``: validate a connector's result and convert it for the reply."""

_VALID_PHASES = frozenset(int(p) for p in Phase if p is not Phase.UNDEFINED)
TERMINAL = frozenset({int(Phase.SUCCEEDED), int(Phase.FAILED), int(Phase.ABORTED), int(Phase.RETRYABLE_FAILED)})


def _encode_meta(entry: Entry, operation: str, convert: Any, meta: Any) -> bytes:
    if not isinstance(meta, ResourceMeta):
        expected = entry.meta_type.__name__ if entry.meta_type is not None else "ResourceMeta"
        raise ConnectorBug(
            f"{entry.name}.create() returned {type(meta).__name__}, expected a ResourceMeta ({expected})"
        )
    try:
        data = meta.encode()
    except Exception as e:
        raise ConnectorBug(f"{entry.name}: resource_meta {type(meta).__name__} failed to encode: {e}") from e
    if not isinstance(data, bytes):
        raise ConnectorBug(f"{entry.name}: {type(meta).__name__}.encode() returned {type(data).__name__}, not bytes")
    return data if convert is None else convert(data)


def _resource(entry: Entry, method: str, convert: Callable[[Resource], Any] | None, result: Any) -> Any:
    """Validate a get/do result and convert it; problems are the connector's bug."""
    if not isinstance(result, Resource):
        raise ConnectorBug(f"{entry.name}.{method}() returned {type(result).__name__}, expected flyteconnect.Resource")
    phase = result.phase
    if phase not in _VALID_PHASES:
        if not phase:
            raise ConnectorBug(
                f"{entry.name}.{method}() returned a Resource with phase UNDEFINED; return a real phase "
                "(QUEUED, RUNNING, SUCCEEDED, FAILED...)"
            )
        raise ConnectorBug(f"{entry.name}.{method}() returned a Resource with an unknown phase {phase!r}")
    if method == "do" and int(phase) not in TERMINAL:
        raise ConnectorBug(
            f"{entry.name}.do() returned phase {Phase(phase).name}; a sync connector must return a terminal phase"
        )
    if convert is None:
        return result
    try:
        return convert(result)
    except Exception as e:
        raise ConnectorBug(f"{entry.name}.{method}() returned a Resource that cannot be sent: {e}") from e


def converted(entry: Entry, method: str, convert: Callable[[Any], Any] | None, result: Any) -> Any:
    """``convert(result)`` (metrics, log pages); a failure is the connector's bug."""
    if convert is None:
        return result
    try:
        return convert(result)
    except ConnectorBug:
        raise
    except Exception as e:
        raise ConnectorBug(f"{entry.name}.{method}() returned an unusable {type(result).__name__}: {e}") from e


def _nothing(entry: Entry, method: str, convert: Any, result: Any) -> Any:
    """delete: whatever the connector returned means done; the reply is ``convert(None)``."""
    return None if convert is None else convert(None)


CHECKS: dict[str, Check] = {
    "create": _encode_meta,
    "get": _resource,
    "do": _resource,
    "delete": _nothing,
    "get_metrics": converted,
    "get_logs": converted,
}
"""The check of each operation."""
