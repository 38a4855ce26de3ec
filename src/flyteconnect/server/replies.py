"""The hot RPCs' replies written as protobuf wire bytes (GetTask, ExecuteTaskSync, CreateTask; Flyte 1 and 2).

grpc only serializes a reply, so building it as upb messages first (a Python wrapper per nested message, then a
serialization pass) is wasted work: these functions write the bytes ``SerializeToString`` would give for the same
message, and the handlers are registered without a response serializer. Outputs go through
``flyteconnect.literals.to_literal_map_bytes``; log links and ``custom_info`` are converted as before and serialized.

Flyte 1's ``flyteidl.admin.Resource`` and Flyte 2's ``flyteidl2.connector.Resource`` share the field numbers
(outputs 2, message 3, log_links 4, phase 5, custom_info 6; both TaskLogs are wire-compatible); only Flyte 1 has the
deprecated ``state`` (1). Fields are written in field-number order, as upb writes them. ``message`` is written with
the server's remembered secret values masked (``flyteconnect.redaction``; free while there is none).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flyteconnect.connector import Phase, Resource, state_for_phase
from flyteconnect.redaction import VALUES as _SECRETS
from flyteconnect.wire import delimited, varint

__all__ = ["create_task", "execute_task_sync", "get_task_v1", "get_task_v2", "resource_v1", "resource_v2"]


def _varint_field(tag: bytes, value: int) -> bytes:
    """A proto3 enum field: absent when zero."""
    return tag + varint(value) if value else b""


# Per phase (keys are Phase members, equal to and hashed like their ints): Flyte 1's deprecated ``state`` (1),
# consistent with the phase, and ``phase`` (5) itself.
_STATE_FIELD = {p: _varint_field(b"\x08", state_for_phase(p)) for p in Phase}
_PHASE_FIELD = {p: _varint_field(b"\x28", p) for p in Phase}

_literals: Any = None


def _literal_engine() -> Any:
    global _literals
    if _literals is None:  # the literal engine loads with the first outputs: start-up stays light
        from flyteconnect import literals as _literals
    return _literals


def _resource(resource: Resource, state: bool, log_links: Callable[[Resource], list[Any]]) -> bytes:
    phase: Any = resource.phase
    out = _STATE_FIELD.get(phase, b"") if state else b""  # no state for a phase: RETRYABLE_FAILURE (0), absent
    if resource.outputs is not None:  # empty outputs are still present, as with CopyFrom
        out += delimited(b"\x12", (_literals or _literal_engine()).to_literal_map_bytes(resource.outputs))
    message = resource.message
    if message:
        if type(message) is not str:
            raise TypeError(f"Resource.message must be a str, got {type(message).__name__}")
        if _SECRETS.patterns:
            message = _SECRETS.redact(message)
        out += delimited(b"\x1a", message.encode())
    if resource.log_links:
        out += b"".join(delimited(b"\x22", link.SerializeToString()) for link in log_links(resource))
    out += _PHASE_FIELD.get(phase) or _varint_field(b"\x28", int(phase))
    if resource.custom_info:
        custom_info = resource.custom_info_to_flyte_idl()
        if custom_info is not None:
            out += delimited(b"\x32", custom_info.SerializeToString())
    return out


def _v2_links(resource: Resource) -> list[Any]:
    from flyteconnect.server.v2_convert import log_links_to_v2

    return log_links_to_v2(resource.log_links)


def resource_v1(resource: Resource) -> bytes:
    """A serialized ``flyteidl.admin.Resource`` (``Resource.to_flyte_idl()``'s message)."""
    return _resource(resource, True, Resource.log_links_to_flyte_idl)


def resource_v2(resource: Resource) -> bytes:
    """A serialized ``flyteidl2.connector.Resource`` (``v2_convert.resource_to_v2``'s message)."""
    return _resource(resource, False, _v2_links)


def get_task_v1(resource: Resource) -> bytes:
    """A serialized ``flyteidl.admin.GetTaskResponse`` carrying ``resource``."""
    return delimited(b"\n", _resource(resource, True, Resource.log_links_to_flyte_idl))


def execute_task_sync(resource: Resource) -> bytes:
    """A serialized ``flyteidl.admin.ExecuteTaskSyncResponse`` whose header carries ``resource``."""
    return delimited(b"\n", delimited(b"\n", _resource(resource, True, Resource.log_links_to_flyte_idl)))


def get_task_v2(resource: Resource) -> bytes:
    """A serialized ``flyteidl2.connector.GetTaskResponse`` carrying ``resource``."""
    return delimited(b"\n", _resource(resource, False, _v2_links))


def create_task(resource_meta: bytes) -> bytes:
    """A serialized ``CreateTaskResponse`` (Flyte 1 and 2: ``bytes resource_meta = 1``), empty when it is."""
    return delimited(b"\n", resource_meta) if resource_meta else b""
