"""The one Resource encoder: a ``Resource`` as the wire bytes of ``flyteidl.admin.Resource`` (Flyte 1) or
``flyteidl2.connector.Resource`` (Flyte 2).

Everything that turns a Resource into a message derives from these bytes: the server's replies (``server.replies``
wraps them in GetTaskResponse / ExecuteTaskSyncResponse), ``Resource.to_flyte_idl()`` and
``v2_convert.resource_to_v2()`` (parsed from them), so a new field is one change here. Building the messages as upb
protos first would cost a Python wrapper per nested message and a serialization pass; the reply is only ever sent.

Both messages share the field numbers (outputs 2, message 3, log_links 4, phase 5, custom_info 6; both TaskLogs are
wire-compatible, and a Flyte 2 ``Outputs`` encodes like a ``LiteralMap``); only Flyte 1 has the deprecated ``state``
(1). Fields are written in field-number order, as upb writes them. ``message`` is written with the server's remembered
secret values masked (``flyteconnect.redaction``). To add a field: one line in ``resource_bytes`` (its
tag is ``field_number << 3 | wire_type``), and a case in tests/server/test_replies.py.
"""

from __future__ import annotations

from typing import Any

from flyteconnect.connector import Phase, Resource, state_for_phase
from flyteconnect.redaction import VALUES as _SECRETS
from flyteconnect.wire import delimited, varint

__all__ = ["resource_bytes", "resource_v1", "resource_v2"]


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


def _log_link(link: Any) -> bytes:
    """A TaskLog's bytes: a Flyte 1 or Flyte 2 proto (wire-compatible), or a flytekit-style model."""
    if hasattr(link, "to_flyte_idl"):
        link = link.to_flyte_idl()
    data: bytes = link.SerializeToString()
    return data


def resource_bytes(resource: Resource, state: bool) -> bytes:
    """A serialized Flyte 1 Resource (``state``: with the deprecated state field) or Flyte 2 Resource."""
    phase: Any = resource.phase
    out = _STATE_FIELD.get(phase, b"") if state else b""  # no state for a phase: RETRYABLE_FAILURE (0), absent
    if resource.outputs is not None:  # empty outputs are still present
        out += delimited(b"\x12", (_literals or _literal_engine()).to_literal_map_bytes(resource.outputs))
    message = resource.message
    if message:
        if type(message) is not str:
            raise TypeError(f"Resource.message must be a str, got {type(message).__name__}")
        if _SECRETS.patterns:  # the server's remembered secret values masked (free while there is none)
            message = _SECRETS.redact(message)
        out += delimited(b"\x1a", message.encode())
    if resource.log_links:
        out += b"".join(delimited(b"\x22", _log_link(link)) for link in resource.log_links)
    out += _PHASE_FIELD.get(phase) or _varint_field(b"\x28", int(phase))
    if resource.custom_info:
        custom_info = resource.custom_info_to_flyte_idl()
        if custom_info is not None:
            out += delimited(b"\x32", custom_info.SerializeToString())
    return out


def resource_v1(resource: Resource) -> bytes:
    """A serialized ``flyteidl.admin.Resource``, with the deprecated ``state`` consistent with the phase."""
    return resource_bytes(resource, True)


def resource_v2(resource: Resource) -> bytes:
    """A serialized ``flyteidl2.connector.Resource`` (Flyte 2 dropped ``state``)."""
    return resource_bytes(resource, False)
