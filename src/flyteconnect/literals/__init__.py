"""Python values <-> Flyte literals, producing the same literals flytekit 1.16 does (proven by golden tests).

Supported types: int, float, str, bool, bytes, datetime, date, timedelta, None, Optional and Union, string-valued
Enums, ``list[T]``, ``dict[str, T]``, untyped ``dict`` (msgpack), dataclasses and pydantic models (msgpack),
:class:`FlyteFile`, :class:`FlyteDirectory`, :class:`StructuredDataset` (by URI), and ``Literal`` protos (passed
through). Without a type, a value converts by its runtime type; a list whose elements share one type becomes a
collection of it (flytekit cannot do untyped lists), a list of mixed types becomes msgpack like an untyped dict.

Differences from flytekit, where flytekit would pickle to a local file: ``bytes`` is ``scalar.binary`` (empty tag,
``SimpleType.BINARY``); ``typing.Any`` is inferred from the value. An int is accepted where a float is expected and
an Enum's value where the Enum is. Files are not uploaded: the path is the URI.

Bad values raise :class:`flyteconnect.errors.LiteralError` naming the field and the expected type, e.g.
``input 'x': expected int, got str ('abc')``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flyteidl.core import interface_pb2, literals_pb2, types_pb2

from flyteconnect.errors import LiteralError
from flyteconnect.literals.base import ConversionFailed
from flyteconnect.literals.infer import UntypedCodec, decode_untyped
from flyteconnect.literals.primitives import encode_bool, encode_float, encode_int, encode_str
from flyteconnect.literals.types import codec_for, python_type_for
from flyteconnect.literals.values import FlyteDirectory, FlyteFile, StructuredDataset
from flyteconnect.wire import literal_map_bytes

__all__ = [
    "FlyteDirectory",
    "FlyteFile",
    "StructuredDataset",
    "literal_map_to_python",
    "to_literal",
    "to_literal_map",
    "to_literal_map_bytes",
    "to_literal_map_proto",
    "to_literal_type",
    "to_python",
    "to_python_type",
]

# The server's hot path (untyped connector outputs): primitives dispatch on the exact runtime type.
_FAST_ENCODERS: dict[type, Any] = {int: encode_int, float: encode_float, str: encode_str, bool: encode_bool}
# ... and in a LiteralMap they are written in place (``Primitive`` field per exact type): no Literal, no copy.
# Same bytes as the encoders above; ints outside int64 go through encode_int for its error.
_PRIMITIVE_FIELDS: dict[type, str] = {float: "float_value", str: "string_value", bool: "boolean"}
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_UNTYPED = UntypedCodec()


def _error(e: ConversionFailed, name: str | None, what: str) -> LiteralError:
    where = e.where()
    if name is not None:
        return LiteralError(f"{what} {name!r}{where}: {e.detail}")
    return LiteralError(f"{where}: {e.detail}" if where else e.detail)


def _encode(value: Any, python_type: Any) -> literals_pb2.Literal:
    if python_type is None:
        fast = _FAST_ENCODERS.get(type(value))
        if fast is not None:
            return fast(value)  # type: ignore[no-any-return]
        if isinstance(value, literals_pb2.Literal):
            return value
        return _UNTYPED.encode(value)
    if isinstance(value, literals_pb2.Literal):
        return value
    return codec_for(python_type).encode(value)


def _decode(literal: literals_pb2.Literal, python_type: Any) -> Any:
    if python_type is None:
        return decode_untyped(literal)
    if isinstance(python_type, types_pb2.LiteralType):
        python_type = python_type_for(python_type)
    elif isinstance(python_type, interface_pb2.Variable):
        python_type = python_type_for(python_type.type)
    return codec_for(python_type).decode(literal)


def to_literal(value: Any, python_type: Any = None) -> literals_pb2.Literal:
    """Convert a Python value to a ``flyteidl.core.Literal``, by ``python_type`` or, without it, its runtime type.

    A ``Literal`` value is returned unchanged.
    """
    try:
        return _encode(value, python_type)
    except ConversionFailed as e:
        raise _error(e, None, "") from None


def to_python(literal: literals_pb2.Literal, python_type: Any = None) -> Any:
    """Convert a Literal to a Python value of ``python_type`` (a type hint or a ``LiteralType``), or inferred from
    the literal alone."""
    try:
        return _decode(literal, python_type)
    except ConversionFailed as e:
        raise _error(e, None, "") from None


def to_literal_type(python_type: Any) -> types_pb2.LiteralType:
    """The ``flyteidl.core.LiteralType`` of a Python type hint, as flytekit declares it in task interfaces."""
    try:
        out = types_pb2.LiteralType()
        out.CopyFrom(codec_for(python_type).literal_type)  # a copy: the cached one must not be mutated
        return out
    except ConversionFailed as e:
        raise _error(e, None, "") from None


def to_python_type(literal_type: types_pb2.LiteralType) -> Any:
    """The best Python type for a LiteralType: ``list[int]`` for a collection of INTEGER, ``FlyteFile`` for a
    single-part blob, ``dict`` for a STRUCT (dataclasses cannot be rebuilt), an Enum for an enum type..."""
    return python_type_for(literal_type)


def to_literal_map(
    values: Mapping[str, Any],
    type_hints: Mapping[str, Any] | None = None,
    *,
    what: str = "input",
    into: literals_pb2.LiteralMap | None = None,
) -> literals_pb2.LiteralMap:
    """Convert a dict of Python values to a ``flyteidl.core.LiteralMap``; names without a hint use runtime types.

    ``what`` names the fields in error messages ("input 'x': ..."). ``into`` fills that (empty) map in place, e.g. a
    reply's ``outputs`` field, instead of a new one that would then be copied.
    """
    out = literals_pb2.LiteralMap() if into is None else into
    literals = out.literals
    for name, value in values.items():
        hint = type_hints.get(name) if type_hints else None
        if hint is None:
            kind = type(value)
            if kind is int and _INT64_MIN <= value <= _INT64_MAX:
                literals[name].scalar.primitive.integer = value
                continue
            field = _PRIMITIVE_FIELDS.get(kind)
            if field is not None:
                setattr(literals[name].scalar.primitive, field, value)
                continue
        try:
            lit = _encode(value, hint)
        except ConversionFailed as e:
            raise _error(e, name, what) from None
        literals[name].CopyFrom(lit)
    return out


def literal_map_to_python(
    lm: Any, type_hints: Mapping[str, Any] | None = None, *, what: str = "input"
) -> dict[str, Any]:
    """Convert a LiteralMap (proto or ``flyteconnect.models.LiteralMap``) to a dict of Python values.

    ``type_hints`` maps names to Python types, ``LiteralType`` protos or interface ``Variable`` protos (e.g. a
    TaskTemplate's ``interface.outputs``); names without a hint are read from the literal alone.
    """
    if not isinstance(lm, literals_pb2.LiteralMap) and hasattr(lm, "to_flyte_idl"):
        lm = lm.to_flyte_idl()
    hints = type_hints or {}
    out = {}
    for name, lit in lm.literals.items():
        try:
            out[name] = _decode(lit, hints.get(name))
        except ConversionFailed as e:
            raise _error(e, name, what) from None
    return out


def to_literal_map_proto(outputs: Any, type_hints: Mapping[str, Any] | None = None) -> literals_pb2.LiteralMap:
    """Resource outputs (a dict, a ``flyteconnect.models.LiteralMap`` view, a LiteralMap proto, or a Flyte 2
    ``flyteidl2.task.Outputs`` proto, whose bytes are a LiteralMap's) as a LiteralMap proto."""
    if type(outputs) is dict:  # the common case first
        return to_literal_map(outputs, type_hints, what="output")
    if isinstance(outputs, literals_pb2.LiteralMap):
        return outputs
    if _is_flyte2_outputs(outputs):
        return literals_pb2.LiteralMap.FromString(outputs.SerializeToString())
    if hasattr(outputs, "to_flyte_idl"):
        pb: literals_pb2.LiteralMap = outputs.to_flyte_idl()
        return pb
    if isinstance(outputs, Mapping):
        return to_literal_map(outputs, type_hints, what="output")
    raise LiteralError(f"outputs must be a dict or a LiteralMap, got {type(outputs).__name__}")


def to_literal_map_bytes(outputs: Any) -> bytes:
    """``to_literal_map_proto(outputs).SerializeToString()``, for the same inputs; a dict's int, float, str and
    bool values are written without building their protos (the server's reply path, ``flyteconnect.wire``), and a
    proto is serialized as it is (a Flyte 2 ``Outputs`` keeps its own fields: the reply is its bytes)."""
    if type(outputs) is dict or (isinstance(outputs, Mapping) and not hasattr(outputs, "to_flyte_idl")):
        try:
            return literal_map_bytes(outputs, _encode_output)
        except AttributeError:  # a name without .encode(): say which (checked only on this error path)
            for name in outputs:
                if not isinstance(name, str):
                    raise LiteralError(f"output names must be str, got {type(name).__name__} ({name!r})") from None
            raise
    if _is_flyte2_outputs(outputs):
        return outputs.SerializeToString()  # type: ignore[no-any-return]
    data: bytes = to_literal_map_proto(outputs).SerializeToString()
    return data


def _is_flyte2_outputs(value: Any) -> bool:
    """A ``flyteidl2.task.Outputs`` (``repeated NamedLiteral literals = 1``: a LiteralMap's bytes), known by name so
    flyteidl2 is never imported here."""
    descriptor = getattr(type(value), "DESCRIPTOR", None)
    return getattr(descriptor, "full_name", None) == "flyteidl2.task.Outputs"


def _encode_output(name: str, value: Any) -> literals_pb2.Literal:
    """The Literal of output ``name`` (by its runtime type); LiteralError naming the output when it cannot be."""
    try:
        return _encode(value, None)
    except ConversionFailed as e:
        raise _error(e, name, "output") from None
