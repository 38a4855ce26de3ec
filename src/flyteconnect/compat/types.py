"""flytekit's ``TypeEngine`` calls that connectors make, answered by ``flyteconnect.literals``.

The ``ctx`` argument flytekit threads through every call is accepted and ignored. Literals and literal types are
flyteidl protos (flytekit returns its model wrappers; both have the same fields). The literals are flytekit's own:
``flyteconnect.literals`` is tested against flytekit's encodings.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flyteidl.core import literals_pb2, types_pb2

from flyteconnect import literals as _lit

__all__ = ["LiteralType", "StructuredDatasetType", "TypeEngine", "literal_map_string_repr"]

LiteralType = types_pb2.LiteralType
StructuredDatasetType = types_pb2.StructuredDatasetType


def _proto(value: Any) -> Any:
    """A flyteconnect view or flytekit-shaped object as its proto; a proto unchanged."""
    return value.to_flyte_idl() if hasattr(value, "to_flyte_idl") else value


class TypeEngine:
    """Python values <-> literals, with flytekit's ``TypeEngine`` method names and arguments."""

    @staticmethod
    def to_literal(ctx: Any, python_val: Any, python_type: Any, expected: Any = None) -> literals_pb2.Literal:
        """The literal of ``python_val`` as ``python_type`` (``expected``, a LiteralType, is not needed)."""
        return _lit.to_literal(python_val, python_type)

    @staticmethod
    def to_python_value(ctx: Any, lv: Any, expected_python_type: Any) -> Any:
        """The Python value of the literal ``lv``."""
        return _lit.to_python(_proto(lv), expected_python_type)

    @staticmethod
    def to_literal_type(python_type: Any) -> types_pb2.LiteralType:
        """The LiteralType flytekit declares for ``python_type``."""
        return _lit.to_literal_type(python_type)

    @staticmethod
    def guess_python_type(flyte_type: Any) -> Any:
        """A Python type for a LiteralType."""
        return _lit.to_python_type(_proto(flyte_type))

    @staticmethod
    def literal_map_to_kwargs(
        ctx: Any,
        lm: Any,
        python_types: Mapping[str, Any] | None = None,
        literal_types: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """The Python values of a LiteralMap, by ``python_types`` or ``literal_types`` (LiteralType or Variable)."""
        hints: dict[str, Any] = {}
        if literal_types:
            hints.update({k: _proto(v) for k, v in literal_types.items()})
        if python_types:
            hints.update(python_types)
        return _lit.literal_map_to_python(_proto(lm), hints)

    @staticmethod
    def dict_to_literal_map(ctx: Any, d: Mapping[str, Any], type_hints: Mapping[str, Any] | None = None) -> Any:
        """A LiteralMap proto of Python values (by ``type_hints``, else their runtime types)."""
        return _lit.to_literal_map(d, type_hints)


def _literal_repr(lit: literals_pb2.Literal) -> Any:
    kind = lit.WhichOneof("value")
    if kind == "collection":
        return [_literal_repr(x) for x in lit.collection.literals]
    if kind == "map":
        return {k: _literal_repr(v) for k, v in lit.map.literals.items()}
    if kind == "scalar":
        scalar = lit.scalar
        which = scalar.WhichOneof("value")
        if which == "blob":
            return scalar.blob.uri
        if which == "structured_dataset":
            return scalar.structured_dataset.uri
        if which == "none_type":
            return None
        if which == "union":
            return _literal_repr(scalar.union.value)
    if kind == "offloaded_metadata":
        return f"Offloaded literal metadata: {lit.offloaded_metadata}"
    return _lit.to_python(lit)


def literal_map_string_repr(lm: Any) -> dict[str, Any]:
    """A LiteralMap (or a dict of literals) as plain values; files and datasets as their URIs (flytekit's helper)."""
    literals = lm.literals if hasattr(lm, "literals") else lm
    return {name: _literal_repr(_proto(lit)) for name, lit in literals.items()}
