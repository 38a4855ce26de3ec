"""Conversion without type hints: the Python type of a value inferred from the value, and Python values read from
a literal alone.

Choices (documented in the package docstring): a list whose elements all infer to the same type is a collection of
that type (an empty list is an empty collection); a list of mixed types is msgpack, like an untyped dict.
"""

from __future__ import annotations

import dataclasses
import datetime
import enum
import sys
from typing import Any

import msgpack
from flyteidl.core import literals_pb2, types_pb2

from flyteconnect.literals.base import Codec, ConversionFailed, show_value
from flyteconnect.literals.blobs import as_v1_literal
from flyteconnect.literals.containers import MSGPACK, MsgpackCodec
from flyteconnect.literals.values import FlyteDirectory, FlyteFile, StructuredDataset, with_format
from flyteconnect.protostruct import struct_to_dict

__all__ = ["UntypedCodec", "decode_untyped", "infer_type"]

_BY_TYPE: dict[type, Any] = {
    int: int,
    float: float,
    str: str,
    bool: bool,
    bytes: bytes,
    bytearray: bytes,
    type(None): type(None),
    datetime.datetime: datetime.datetime,
    datetime.date: datetime.date,
    datetime.timedelta: datetime.timedelta,
    dict: dict,
    literals_pb2.Literal: literals_pb2.Literal,
    StructuredDataset: StructuredDataset,
}


def infer_type(value: Any) -> Any:
    """The type hint flyteconnect converts ``value`` as when no type is given."""
    tp = _BY_TYPE.get(type(value))
    if tp is not None:
        return tp
    if isinstance(value, (list, tuple)):
        return _list_type(value)
    if isinstance(value, enum.Enum):
        # A str-valued Enum keeps its type; other Enums are written by value.
        return type(value) if all(isinstance(m.value, str) for m in type(value)) else infer_type(value.value)
    if isinstance(value, (FlyteFile, FlyteDirectory)):
        return type(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return type(value)
    pydantic = sys.modules.get("pydantic")
    if pydantic is not None and isinstance(value, pydantic.BaseModel):
        return type(value)
    if as_v1_literal(value) is not None:
        return literals_pb2.Literal
    for base, tp in _BY_TYPE.items():  # subclasses of the simple types (IntEnum handled above, str subclasses...)
        if isinstance(value, base) and base is not type(None):
            return tp
    raise ConversionFailed(f"cannot convert a value of type {type(value).__name__} ({show_value(value)})")


def _list_type(value: list[Any] | tuple[Any, ...]) -> Any:
    if not value:
        return list[type(None)]  # type: ignore[misc]
    first = infer_type(value[0])
    for v in value[1:]:
        if infer_type(v) != first:
            return list  # mixed: msgpack
    return list[first]  # type: ignore[valid-type]


class UntypedCodec(Codec):
    """``typing.Any``, a bare ``list``: the type is inferred from each value, and read from the literal alone."""

    name = "Untyped"

    def __init__(self, python_type: Any = Any) -> None:
        self.python_type = python_type

    def make_literal_type(self) -> types_pb2.LiteralType:
        if self.python_type is list:
            return MsgpackCodec(list).literal_type
        raise ConversionFailed("typing.Any has no LiteralType; give a concrete type")

    def matches(self, value: Any) -> bool:
        return self.python_type is Any or isinstance(value, list)

    def encode(self, value: Any) -> literals_pb2.Literal:
        from flyteconnect.literals.types import codec_for

        if self.python_type is list and not isinstance(value, (list, tuple)):
            raise self.expected(value)
        tp = infer_type(value)
        if tp is list:
            return MsgpackCodec(list).encode(list(value))
        return codec_for(tp).encode(value)

    def decode(self, lit: literals_pb2.Literal) -> Any:
        return decode_untyped(lit)


def decode_untyped(lit: literals_pb2.Literal) -> Any:
    """A Python value read from a literal alone. Kinds without a Python form (offloaded literals, schemas, errors)
    are returned as the Literal itself."""
    kind = lit.WhichOneof("value")
    if kind == "collection":
        return [decode_untyped(v) for v in lit.collection.literals]
    if kind == "map":
        return {k: decode_untyped(v) for k, v in lit.map.literals.items()}
    if kind is None:
        return None
    if kind != "scalar":
        return lit
    scalar = lit.scalar
    skind = scalar.WhichOneof("value")
    if skind == "primitive":
        prim = scalar.primitive
        pkind = prim.WhichOneof("value")
        if pkind == "datetime":
            return prim.datetime.ToDatetime(tzinfo=datetime.timezone.utc)
        if pkind == "duration":
            return prim.duration.ToTimedelta()
        return getattr(prim, pkind) if pkind else None
    if skind == "none_type" or skind is None:
        return None
    if skind == "union":
        return decode_untyped(scalar.union.value)
    if skind == "binary":
        if scalar.binary.tag == MSGPACK:
            try:
                return msgpack.unpackb(scalar.binary.value, strict_map_key=False)
            except (ValueError, msgpack.ExtraData) as e:
                raise ConversionFailed(f"msgpack binary literal does not decode: {e}") from None
        return scalar.binary.value
    if skind == "blob":
        blob = scalar.blob
        multipart = blob.metadata.type.dimensionality == types_pb2.BlobType.MULTIPART
        base = FlyteDirectory if multipart else FlyteFile
        fmt = blob.metadata.type.format
        return (with_format(base, fmt) if fmt else base)(blob.uri)
    if skind == "structured_dataset":
        sd = scalar.structured_dataset
        return StructuredDataset(sd.uri, sd.metadata.structured_dataset_type.format)
    if skind == "generic":
        return struct_to_dict(scalar.generic)
    return lit
