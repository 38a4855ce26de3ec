"""What every codec shares: the codec interface, error paths and short descriptions of values and literals."""

from __future__ import annotations

import typing
from typing import Any

from flyteidl.core import literals_pb2, types_pb2

__all__ = ["Codec", "ConversionFailed", "describe_literal", "show_value", "type_name"]


class ConversionFailed(Exception):
    """Internal: a value or literal does not fit its type. Containers prepend their index or key to ``path``;
    the public functions turn it into a ``LiteralError`` with the field name (so the success path pays nothing)."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail
        self.path: list[str] = []

    def at(self, step: str) -> ConversionFailed:
        """Record that the failure happened inside ``step`` (``[0]`` or ``['key']``), outermost last."""
        self.path.append(step)
        return self

    def where(self) -> str:
        """The container path from the outermost value, e.g. ``[2]['a']``."""
        return "".join(reversed(self.path))


class Codec:
    """Converts between one Python type and Flyte literals, as flytekit's transformer for that type does.

    ``name`` is flytekit's transformer name: a union variant's literal type is tagged with it.
    """

    name: str = ""
    python_type: Any = None
    _literal_type: types_pb2.LiteralType | None = None

    @property
    def literal_type(self) -> types_pb2.LiteralType:
        """The LiteralType of ``python_type`` (computed once; callers must not mutate it)."""
        lt = self._literal_type
        if lt is None:
            lt = self._literal_type = self.make_literal_type()
        return lt

    def make_literal_type(self) -> types_pb2.LiteralType:
        raise NotImplementedError

    def matches(self, value: Any) -> bool:
        """Whether ``value`` is exactly of this type (used to pick a union variant)."""
        raise NotImplementedError

    def encode(self, value: Any) -> literals_pb2.Literal:
        """Python value -> Literal; raises ConversionFailed."""
        raise NotImplementedError

    def decode(self, lit: literals_pb2.Literal) -> Any:
        """Literal -> Python value; raises ConversionFailed."""
        raise NotImplementedError

    def expected(self, value: Any) -> ConversionFailed:
        """The error for a value that is not of this type."""
        return ConversionFailed(
            f"expected {type_name(self.python_type)}, got {type(value).__name__} ({show_value(value)})"
        )

    def mismatch(self, lit: literals_pb2.Literal) -> Any:
        """Slow path of ``decode`` when the literal is not of the expected kind: unwrap a union value (Propeller may
        hand over a union-wrapped value for a plain type), else fail."""
        if lit.HasField("scalar") and lit.scalar.HasField("union"):
            return self.decode(lit.scalar.union.value)
        raise ConversionFailed(f"expected a literal of {type_name(self.python_type)}, got {describe_literal(lit)}")


def type_name(tp: Any) -> str:
    """Short readable name of a type hint: ``int``, ``list[int]``, ``Optional[str]``."""
    if tp is type(None) or tp is None:
        return "None"
    if isinstance(tp, type) and not typing.get_args(tp):
        return tp.__name__
    return repr(tp).replace("typing.", "")


def show_value(value: Any, limit: int = 60) -> str:
    """``repr`` of a value, cut to ``limit`` characters for error messages."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def describe_literal(lit: literals_pb2.Literal) -> str:
    """What kind of literal this is, for error messages: ``integer literal``, ``collection literal``..."""
    kind = lit.WhichOneof("value")
    if kind != "scalar":
        return f"{kind} literal" if kind else "empty literal"
    scalar_kind = lit.scalar.WhichOneof("value")
    if scalar_kind == "primitive":
        return f"{lit.scalar.primitive.WhichOneof('value')} literal"
    if scalar_kind == "binary":
        return f"binary literal (tag {lit.scalar.binary.tag!r})"
    return f"{scalar_kind} literal" if scalar_kind else "empty scalar literal"
