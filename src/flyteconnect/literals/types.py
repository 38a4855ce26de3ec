"""Python type hints -> codecs (cached per type), and LiteralType -> the best Python type."""

from __future__ import annotations

import dataclasses
import datetime
import enum
import functools
import sys
import types
import typing
from typing import Any

from flyteidl.core import literals_pb2, types_pb2

from flyteconnect.literals import primitives as p
from flyteconnect.literals.base import Codec, ConversionFailed, type_name
from flyteconnect.literals.blobs import BlobCodec, LiteralCodec, StructuredDatasetCodec
from flyteconnect.literals.containers import ListCodec, MapCodec, MsgpackCodec, UnionCodec
from flyteconnect.literals.structs import DataclassCodec, PydanticCodec
from flyteconnect.literals.values import FlyteDirectory, FlyteFile, StructuredDataset, with_format

__all__ = ["codec_for", "python_type_for"]

_SIMPLE_CODECS: dict[Any, Codec] = {
    int: p.IntCodec(),
    float: p.FloatCodec(),
    str: p.StrCodec(),
    bool: p.BoolCodec(),
    bytes: p.BytesCodec(),
    datetime.datetime: p.DatetimeCodec(),
    datetime.date: p.DateCodec(),
    datetime.timedelta: p.TimedeltaCodec(),
    type(None): p.NoneCodec(),
    None: p.NoneCodec(),
    literals_pb2.Literal: LiteralCodec(),
    StructuredDataset: StructuredDatasetCodec(),
}


def codec_for(python_type: Any) -> Codec:
    """The codec of a Python type hint (raises ConversionFailed for unsupported types)."""
    codec = _SIMPLE_CODECS.get(python_type)
    if codec is not None:
        return codec
    try:
        return _cached_codec(python_type)
    except TypeError:  # unhashable hint (Annotated with unhashable metadata): analyse without the cache
        return _build_codec(python_type)


@functools.cache
def _cached_codec(python_type: Any) -> Codec:
    return _build_codec(python_type)


def _is_pydantic_model(tp: Any) -> bool:
    # Only look at pydantic if something already imported it: no model can exist otherwise.
    pydantic = sys.modules.get("pydantic")
    return pydantic is not None and issubclass(tp, pydantic.BaseModel) and tp is not pydantic.BaseModel


def _build_codec(tp: Any) -> Codec:
    from flyteconnect.literals.infer import UntypedCodec

    simple = _SIMPLE_CODECS.get(tp)
    if simple is not None:
        return simple
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is typing.Annotated:
        return codec_for(args[0])
    if tp is typing.Any or tp is object:
        return UntypedCodec()
    if origin in (typing.Union, types.UnionType):
        return UnionCodec(tp, [codec_for(a) for a in args])
    if origin is list or tp is typing.List:  # noqa: UP006 - typing.List without arguments is a bare list
        if not args:
            return UntypedCodec(list)
        return ListCodec(tp, codec_for(args[0]))
    if tp is list:
        return UntypedCodec(list)
    if origin is dict or tp in (dict, typing.Dict):  # noqa: UP006
        if args and args[0] is str:
            return MapCodec(tp, codec_for(args[1]))
        if args and args[0] is not typing.Any:
            return MsgpackCodec(tp)
        return MsgpackCodec(dict)
    if isinstance(tp, type):
        if issubclass(tp, enum.Enum):
            return p.EnumCodec(tp)
        if dataclasses.is_dataclass(tp):
            return DataclassCodec(tp)
        if issubclass(tp, (FlyteFile, FlyteDirectory)):
            return BlobCodec(tp)
        if issubclass(tp, StructuredDataset):
            return _SIMPLE_CODECS[StructuredDataset]
        if _is_pydantic_model(tp):
            return PydanticCodec(tp)
        if issubclass(tp, literals_pb2.Literal):
            return _SIMPLE_CODECS[literals_pb2.Literal]
    raise ConversionFailed(f"type {type_name(tp)} is not supported")


_SIMPLE_TYPES: dict[int, Any] = {
    types_pb2.NONE: type(None),
    types_pb2.INTEGER: int,
    types_pb2.FLOAT: float,
    types_pb2.STRING: str,
    types_pb2.BOOLEAN: bool,
    types_pb2.DATETIME: datetime.datetime,
    types_pb2.DURATION: datetime.timedelta,
    types_pb2.BINARY: bytes,
    types_pb2.STRUCT: dict,
}


def python_type_for(lt: types_pb2.LiteralType) -> Any:
    """The Python type to read (or parse) a value of LiteralType ``lt`` as."""
    kind = lt.WhichOneof("type")
    if kind == "simple":
        if lt.simple in _SIMPLE_TYPES:
            return _SIMPLE_TYPES[lt.simple]
        return typing.Any
    if kind == "collection_type":
        return list[python_type_for(lt.collection_type)]  # type: ignore[misc]
    if kind == "map_value_type":
        return dict[str, python_type_for(lt.map_value_type)]  # type: ignore[misc]
    if kind == "union_type":
        variants = tuple(python_type_for(v) for v in lt.union_type.variants)
        return typing.Union[variants] if variants else typing.Any
    if kind == "enum_type":
        return _enum_for(tuple(lt.enum_type.values))
    if kind == "blob":
        base = FlyteDirectory if lt.blob.dimensionality == types_pb2.BlobType.MULTIPART else FlyteFile
        return with_format(base, lt.blob.format) if lt.blob.format else base
    if kind == "structured_dataset_type":
        return StructuredDataset
    return typing.Any


@functools.cache
def _enum_for(values: tuple[str, ...]) -> type[enum.Enum]:
    # An Enum whose members are named and valued by the LiteralType's values, so parsing checks membership.
    return enum.Enum("LiteralEnum", [(v, v) for v in values])  # type: ignore[return-value]
