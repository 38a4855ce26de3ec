"""Python values <-> Flyte literals, producing the same literals flytekit does.

PLACEHOLDER: minimal primitives only; the full engine replaces this module's implementation.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flyteidl.core import literals_pb2

from flyteconnect.errors import LiteralError

__all__ = ["literal_map_to_python", "to_literal", "to_literal_map", "to_literal_map_proto", "to_python"]


def to_literal(value: Any, python_type: Any = None) -> literals_pb2.Literal:
    """Convert a Python value to a Literal."""
    if isinstance(value, literals_pb2.Literal):
        return value
    if isinstance(value, bool):
        return literals_pb2.Literal(scalar=literals_pb2.Scalar(primitive=literals_pb2.Primitive(boolean=value)))
    if isinstance(value, int):
        return literals_pb2.Literal(scalar=literals_pb2.Scalar(primitive=literals_pb2.Primitive(integer=value)))
    if isinstance(value, float):
        return literals_pb2.Literal(scalar=literals_pb2.Scalar(primitive=literals_pb2.Primitive(float_value=value)))
    if isinstance(value, str):
        return literals_pb2.Literal(scalar=literals_pb2.Scalar(primitive=literals_pb2.Primitive(string_value=value)))
    raise LiteralError(f"cannot convert {type(value).__name__}")


def to_python(literal: literals_pb2.Literal, python_type: Any = None) -> Any:
    """Convert a Literal to a Python value."""
    p = literal.scalar.primitive
    kind = p.WhichOneof("value")
    return getattr(p, kind) if kind else None


def to_literal_map(values: Mapping[str, Any], type_hints: Mapping[str, Any] | None = None) -> literals_pb2.LiteralMap:
    """Convert a dict of Python values to a LiteralMap proto."""
    hints = type_hints or {}
    return literals_pb2.LiteralMap(literals={k: to_literal(v, hints.get(k)) for k, v in values.items()})


def literal_map_to_python(lm: literals_pb2.LiteralMap, type_hints: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Convert a LiteralMap proto to a dict of Python values."""
    hints = type_hints or {}
    return {k: to_python(v, hints.get(k)) for k, v in lm.literals.items()}


def to_literal_map_proto(outputs: Any, type_hints: Mapping[str, Any] | None = None) -> literals_pb2.LiteralMap:
    """Resource outputs (dict, LiteralMap view or proto) as a LiteralMap proto."""
    if isinstance(outputs, literals_pb2.LiteralMap):
        return outputs
    if hasattr(outputs, "to_flyte_idl"):
        return outputs.to_flyte_idl()  # type: ignore[no-any-return]
    return to_literal_map(outputs, type_hints)
