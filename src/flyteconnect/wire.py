"""Literal maps written straight to protobuf wire bytes: the server's reply hot path.

A GetTask reply with a few primitive outputs spends most of its conversion time in upb creating a Python wrapper for
every nested message on the way down (map entry, Literal, Scalar, Primitive), about 8k instructions per output. The
reply is only ever serialized, so for the usual outputs (int, float, str, bool by exact runtime type) this module
writes the bytes upb would write, in a few bytes operations each; every other value is converted by the literal
engine and serialized (the same literal ``to_literal_map`` gives, so the same bytes).

``flyteidl.core.LiteralMap`` (``map<string, Literal> literals = 1``) and Flyte 2's ``flyteidl2.task.Outputs``
(``repeated NamedLiteral literals = 1``, ``NamedLiteral {name = 1; value = 2}``) have the same wire layout, so the
bytes serve both protocols. Wire format reference: protobuf's encoding guide (varints, tags ``field << 3 | type``).
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Mapping
from typing import Any

from flyteconnect.memo import remember

__all__ = ["delimited", "literal_map_bytes", "varint"]

_ONE_BYTE = [bytes((i,)) for i in range(256)]
_pack_double = struct.Struct("<d").pack
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_U64 = 1 << 64


def varint(n: int) -> bytes:
    """``n`` (0 <= n < 2**64) as a base-128 varint."""
    if n < 0x80:
        return _ONE_BYTE[n]
    if n < 0x4000:
        return bytes((n & 0x7F | 0x80, n >> 7))
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def delimited(tag: bytes, payload: bytes) -> bytes:
    """A length-delimited field: ``tag``, the payload's length as a varint, the payload."""
    n = len(payload)
    return tag + (_ONE_BYTE[n] if n < 0x80 else varint(n)) + payload


def field_bytes(message: bytes, number: int) -> bytes | None:
    """The payload of the first length-delimited field ``number`` in a serialized message, or None when absent;
    ValueError when ``message`` is not wire format up to there. Encoders (Propeller's included) write a field once
    and in number order, so reading stops there: the rest of the message is neither parsed nor checked."""
    pos, end = 0, len(message)
    while pos < end:
        key, pos = _read_varint(message, pos)
        kind = key & 7
        if kind == 0:
            _, pos = _read_varint(message, pos)
        elif kind == 1:
            pos += 8
        elif kind == 5:
            pos += 4
        elif kind == 2:
            size, pos = _read_varint(message, pos)
            if pos + size > end:
                raise ValueError("truncated message")
            if key >> 3 == number:
                return message[pos : pos + size]
            pos += size
        else:  # groups (3, 4) are not in Flyte's messages
            raise ValueError(f"unsupported wire type {kind}")
    if pos != end:
        raise ValueError("truncated message")
    return None


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data) or shift > 63:
            raise ValueError("truncated varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7


def literal_map_bytes(values: Mapping[str, Any], encode: Callable[[str, Any], Any]) -> bytes:
    """The serialized ``LiteralMap`` (or Flyte 2 ``Outputs``) of ``values``.

    ``encode(name, value)`` gives the ``Literal`` proto of a value that is not an exact int (in int64), float, str
    or bool; it raises the literal engine's error naming the output for a bad one.
    """
    # This loop is most of a GetTask with outputs. Each entry is
    #   entry { key = 1: name; value = 2: Literal { scalar = 1: Scalar { primitive = 1: Primitive { ... } } } }
    # and while every length fits in one byte, the usual primitives are written with one format each. A fixed-size
    # value (float, bool, a one- or two-byte int) after a name seen before is its cached head plus the value's bytes:
    # a connector answers the same output names on every poll.
    parts = []
    for name, value in values.items():
        kind = type(value)
        if kind is float:
            head = _FLOAT_HEADS.get(name)
            if head is not None:
                parts.append(head + _pack_double(value))
                continue
        elif kind is int:
            if 0 <= value < 0x80:
                head = _INT1_HEADS.get(name)
                if head is not None:
                    parts.append(head + _ONE_BYTE[value])
                    continue
            elif 0x80 <= value < 0x4000:
                head = _INT2_HEADS.get(name)
                if head is not None:
                    parts.append(head + bytes((value & 0x7F | 0x80, value >> 7)))
                    continue
        key = name.encode()
        k = len(key)
        if k < 100:
            if kind is str:
                raw = value.encode()
                n = len(raw)
                if k + n < 115:  # string_value = 3
                    parts.append(
                        b"\n%c\n%c%b\x12%c\n%c\n%c\x1a%c%b" % (k + n + 10, k, key, n + 6, n + 4, n + 2, n, raw)
                    )
                    continue
            elif kind is int:
                if 0 <= value < 0x80:  # integer = 1, a one-byte varint
                    head = _remember(_INT1_HEADS, name, b"\n%c\n%c%b\x12\x06\n\x04\n\x02\x08" % (k + 10, k, key))
                    parts.append(head + _ONE_BYTE[value])
                    continue
                if 0x80 <= value < 0x4000:  # a two-byte varint
                    head = _remember(_INT2_HEADS, name, b"\n%c\n%c%b\x12\x07\n\x05\n\x03\x08" % (k + 11, k, key))
                    parts.append(head + bytes((value & 0x7F | 0x80, value >> 7)))
                    continue
            elif kind is float:  # float_value = 2, fixed64
                head = _remember(_FLOAT_HEADS, name, b"\n%c\n%c%b\x12\x0d\n\x0b\n\x09\x11" % (k + 17, k, key))
                parts.append(head + _pack_double(value))
                continue
            elif kind is bool:  # boolean = 4 (a oneof: False is written too)
                parts.append(b"\n%c\n%c%b\x12\x06\n\x04\n\x02\x20%c" % (k + 10, k, key, value))
                continue
        parts.append(_entry(key, name, value, encode))
    return b"".join(parts)


# Entry heads (everything before the value's bytes) by output name, per fixed-size value kind; bounded by the one
# memo rule (``memo.remember``). Measured: without them GetTask with three outputs costs 2.5k instructions more in
# process (53.7k -> 56.2k), above the +3% a refactor may cost, so they stay.
_FLOAT_HEADS: dict[str, bytes] = {}
_INT1_HEADS: dict[str, bytes] = {}
_INT2_HEADS: dict[str, bytes] = {}
_HEADS_PER_KIND = 4096


def _remember(heads: dict[str, bytes], name: str, head: bytes) -> bytes:
    return remember(heads, name, head, _HEADS_PER_KIND)


def _entry(key: bytes, name: str, value: Any, encode: Callable[[str, Any], Any]) -> bytes:
    """One map entry of any size and any value."""
    prim = _primitive(value)
    literal = delimited(b"\n", delimited(b"\n", prim)) if prim is not None else encode(name, value).SerializeToString()
    return delimited(b"\n", delimited(b"\n", key) + delimited(b"\x12", literal))


def _primitive(value: Any) -> bytes | None:
    """``Primitive`` bytes of an exact int (in int64), float, str or bool; None for anything else."""
    kind = type(value)
    if kind is str:
        return delimited(b"\x1a", value.encode())
    if kind is int:
        if 0 <= value <= _INT64_MAX:
            return b"\x08" + varint(value)
        if _INT64_MIN <= value < 0:
            return b"\x08" + varint(value + _U64)  # int64 as two's complement: ten bytes
        return None  # out of range: the engine's error
    if kind is float:
        return b"\x11" + _pack_double(value)
    if kind is bool:
        return b"\x20\x01" if value else b"\x20\x00"
    return None
