"""The hot RPCs' replies written as protobuf wire bytes (GetTask, ExecuteTaskSync, CreateTask; Flyte 1 and 2).

grpc only serializes a reply, so building it as upb messages first (a Python wrapper per nested message, then a
serialization pass) is wasted work: these functions write the bytes ``SerializeToString`` would give for the same
message, and the handlers are registered without a response serializer. Outputs go through
``flyteconnect.literals.to_literal_map_bytes``; log links and ``custom_info`` are converted as before and serialized.

Flyte 1's ``flyteidl.admin.Resource`` and Flyte 2's ``flyteidl2.connector.Resource`` share the field numbers
(outputs 2, message 3, log_links 4, phase 5, custom_info 6; both TaskLogs are wire-compatible); only Flyte 1 has the
deprecated ``state`` (1). Fields are written in field-number order, as upb writes them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from flyteconnect.connector import Phase, Resource, state_for_phase
from flyteconnect.wire import ONE_BYTE, delimited, literal_map_bytes, varint

__all__ = ["create_task", "execute_task_sync", "get_task_v1", "get_task_v2", "resource_v1", "resource_v2"]

def _varint_field(tag: bytes, value: int) -> bytes:
    """A proto3 enum field: absent when zero."""
    return tag + varint(value) if value else b""


# Per phase (keys are Phase members, equal to and hashed like their ints): Flyte 1's deprecated ``state`` (1),
# consistent with the phase, and ``phase`` (5) itself.
_STATE_FIELD = {p: _varint_field(b"\x08", state_for_phase(p)) for p in Phase}
_PHASE_FIELD = {p: _varint_field(b"\x28", p) for p in Phase}


def _engine_literal(name: str, value: Any) -> Any:
    """The literal engine's Literal for an output that is not a plain primitive (the engine loads on first use)."""
    from flyteconnect.literals import encode_output

    return encode_output(name, value)


def _outputs(outputs: Any) -> bytes:
    if type(outputs) is dict:  # the usual case: straight to the wire writer
        return literal_map_bytes(outputs, _engine_literal)
    from flyteconnect.literals import to_literal_map_bytes

    return to_literal_map_bytes(outputs)


def _resource(resource: Resource, state: bool, log_links: Callable[[Iterable[Any]], list[Any]]) -> bytes:
    # Length-delimited fields are written inline (tag, one length byte when it fits, payload): a call per field
    # would be a fifth of this function's cost.
    phase: Any = resource.phase
    out = _STATE_FIELD.get(phase, b"") if state else b""  # no state for a phase: RETRYABLE_FAILURE (0), absent
    outputs = resource.outputs
    if outputs is not None:  # empty outputs are still present, as with CopyFrom
        body = _outputs(outputs)
        n = len(body)
        out += b"\x12" + (ONE_BYTE[n] if n < 0x80 else varint(n)) + body
    message = resource.message
    if message:
        if type(message) is not str:
            raise TypeError(f"Resource.message must be a str, got {type(message).__name__}")
        body = message.encode()
        n = len(body)
        out += b"\x1a" + (ONE_BYTE[n] if n < 0x80 else varint(n)) + body
    if resource.log_links:
        out += b"".join(delimited(b"\x22", link.SerializeToString()) for link in log_links(resource.log_links))
    out += _PHASE_FIELD.get(phase) or _varint_field(b"\x28", int(phase))
    if resource.custom_info:
        custom_info = resource.custom_info_to_flyte_idl()
        if custom_info is not None:
            out += delimited(b"\x32", custom_info.SerializeToString())
    return out


def _v1_links(links: Iterable[Any]) -> list[Any]:
    return Resource(phase=0, log_links=list(links)).log_links_to_flyte_idl()


def _v2_links(links: Iterable[Any]) -> list[Any]:
    from flyteconnect.server.v2_convert import log_links_to_v2

    return log_links_to_v2(links)


def _field1(payload: bytes) -> bytes:
    n = len(payload)
    return (b"\n" + ONE_BYTE[n] + payload) if n < 0x80 else (b"\n" + varint(n) + payload)


def resource_v1(resource: Resource) -> bytes:
    """A serialized ``flyteidl.admin.Resource`` (``Resource.to_flyte_idl()``'s message)."""
    return _resource(resource, True, _v1_links)


def resource_v2(resource: Resource) -> bytes:
    """A serialized ``flyteidl2.connector.Resource`` (``v2_convert.resource_to_v2``'s message)."""
    return _resource(resource, False, _v2_links)


def get_task_v1(resource: Resource) -> bytes:
    """A serialized ``flyteidl.admin.GetTaskResponse`` carrying ``resource``."""
    return _field1(_resource(resource, True, _v1_links))


def execute_task_sync(resource: Resource) -> bytes:
    """A serialized ``flyteidl.admin.ExecuteTaskSyncResponse`` whose header carries ``resource``."""
    return _field1(_field1(_resource(resource, True, _v1_links)))


def get_task_v2(resource: Resource) -> bytes:
    """A serialized ``flyteidl2.connector.GetTaskResponse`` carrying ``resource``."""
    return _field1(_resource(resource, False, _v2_links))


def create_task(resource_meta: bytes) -> bytes:
    """A serialized ``CreateTaskResponse`` (Flyte 1 and 2: ``bytes resource_meta = 1``), empty when it is."""
    return _field1(resource_meta) if resource_meta else b""
