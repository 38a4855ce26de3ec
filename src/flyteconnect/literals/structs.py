"""Dataclasses and pydantic models: msgpack in ``scalar.binary`` (tag "msgpack"), as flytekit 1.14+ writes them.

The LiteralType is STRUCT with the JSON schema in ``metadata``, each field's LiteralType in
``structure.dataclass_type`` (Propeller uses it for attribute access) and the msgpack annotation.
"""

from __future__ import annotations

import dataclasses
import json
import typing
from typing import Any

import msgpack
from flyteidl.core import literals_pb2, types_pb2

from flyteconnect.literals.base import Codec, ConversionFailed
from flyteconnect.literals.builtin import dumper, loader
from flyteconnect.literals.containers import MSGPACK, msgpack_annotation
from flyteconnect.protostruct import struct_to_dict

__all__ = ["DataclassCodec", "PydanticCodec"]

_Literal = literals_pb2.Literal


def _struct_type(schema: dict[str, Any], fields: dict[str, Any]) -> types_pb2.LiteralType:
    from flyteconnect.literals.types import codec_for

    lt = types_pb2.LiteralType(simple=types_pb2.STRUCT, annotation=msgpack_annotation())
    lt.metadata.update(schema)
    lt.structure.SetInParent()
    for name, tp in fields.items():
        try:
            lt.structure.dataclass_type[name].CopyFrom(codec_for(tp).literal_type)
        except ConversionFailed:
            continue  # flytekit leaves out fields it cannot type; so do we
    return lt


def _msgpack_literal(data: Any) -> literals_pb2.Literal:
    lit = _Literal()
    try:
        lit.scalar.binary.value = msgpack.packb(data, use_bin_type=True)
    except (TypeError, ValueError, OverflowError) as e:
        raise ConversionFailed(f"value cannot be encoded as msgpack: {e}") from None
    lit.scalar.binary.tag = MSGPACK
    return lit


def _payload(codec: Codec, lit: literals_pb2.Literal) -> Any:
    """The builtins inside a msgpack binary (or, for literals written by flytekit < 1.14, a generic Struct)."""
    if lit.WhichOneof("value") == "scalar":
        kind = lit.scalar.WhichOneof("value")
        if kind == "binary" and lit.scalar.binary.tag == MSGPACK:
            try:
                return msgpack.unpackb(lit.scalar.binary.value, strict_map_key=False)
            except (ValueError, msgpack.ExtraData) as e:
                raise ConversionFailed(f"msgpack binary literal does not decode: {e}") from None
        if kind == "generic":
            return struct_to_dict(lit.scalar.generic)
    return codec.mismatch(lit)


class DataclassCodec(Codec):
    name = "Object-Dataclass-Transformer"

    def __init__(self, cls: type) -> None:
        self.python_type = cls
        self._dump = dumper(cls)
        self._load = loader(cls)

    def make_literal_type(self) -> types_pb2.LiteralType:
        from flyteconnect.literals.schema import dataclass_schema

        hints = typing.get_type_hints(self.python_type)
        fields = {f.name: hints.get(f.name, f.type) for f in dataclasses.fields(self.python_type)}
        return _struct_type(dataclass_schema(self.python_type), fields)

    def matches(self, value: Any) -> bool:
        return isinstance(value, self.python_type)

    def encode(self, value: Any) -> literals_pb2.Literal:
        if isinstance(value, dict):  # flytekit accepts a plain dict for a dataclass and packs it as is
            return _msgpack_literal(value)
        if not isinstance(value, self.python_type):
            raise self.expected(value)
        return _msgpack_literal(self._dump(value))

    def decode(self, lit: literals_pb2.Literal) -> Any:
        payload = _payload(self, lit)
        if not isinstance(payload, dict):
            return payload  # mismatch() already decoded a union-wrapped value
        return self._load(payload)


class PydanticCodec(Codec):
    """A pydantic model, dumped through its JSON form as flytekit does (so Enums, datetimes... match)."""

    name = "Pydantic Transformer"

    def __init__(self, cls: type) -> None:
        self.python_type = cls

    def make_literal_type(self) -> types_pb2.LiteralType:
        cls: Any = self.python_type
        fields = {name: info.annotation for name, info in cls.model_fields.items()}
        return _struct_type(cls.model_json_schema(), fields)

    def matches(self, value: Any) -> bool:
        return isinstance(value, self.python_type)

    def encode(self, value: Any) -> literals_pb2.Literal:
        if isinstance(value, dict):
            value = self._validate(value)
        if not isinstance(value, self.python_type):
            raise self.expected(value)
        return _msgpack_literal(json.loads(value.model_dump_json()))

    def _validate(self, data: Any) -> Any:
        try:
            return self.python_type.model_validate(data)
        except ValueError as e:  # pydantic.ValidationError is a ValueError
            first = str(e).splitlines()
            raise ConversionFailed(f"invalid {self.python_type.__name__}: {' '.join(first[:3])}") from None

    def decode(self, lit: literals_pb2.Literal) -> Any:
        payload = _payload(self, lit)
        if isinstance(payload, self.python_type):
            return payload
        return self._validate(payload)
