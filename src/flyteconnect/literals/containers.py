"""Containers: list[T] (collection), dict[str, T] (map), Union/Optional, and msgpack-encoded dicts and lists."""

from __future__ import annotations

import typing
from collections.abc import Sequence
from typing import Any

import msgpack
from flyteidl.core import literals_pb2, types_pb2

from flyteconnect.literals.base import Codec, ConversionFailed, describe_literal, show_value, type_name
from flyteconnect.literals.builtin import dumper, loader
from flyteconnect.protostruct import struct_to_dict

__all__ = ["ListCodec", "MapCodec", "MsgpackCodec", "UnionCodec", "msgpack_annotation"]

_Literal = literals_pb2.Literal
MSGPACK = "msgpack"


def msgpack_annotation() -> types_pb2.TypeAnnotation:
    """The annotation flytekit puts on every msgpack-encoded type (it keys the cache on the serialization format)."""
    ann = types_pb2.TypeAnnotation()
    ann.annotations.update({"cache-key-metadata": {"serialization-format": MSGPACK}})
    return ann


class ListCodec(Codec):
    name = "Typed List"

    def __init__(self, python_type: Any, item: Codec) -> None:
        self.python_type = python_type
        self.item = item

    def make_literal_type(self) -> types_pb2.LiteralType:
        return types_pb2.LiteralType(collection_type=self.item.literal_type)

    def matches(self, value: Any) -> bool:
        return isinstance(value, list) and all(self.item.matches(v) for v in value)

    def encode(self, value: Any) -> literals_pb2.Literal:
        if not isinstance(value, (list, tuple)):
            raise self.expected(value)
        encode = self.item.encode
        out = []
        for i, v in enumerate(value):
            try:
                out.append(encode(v))
            except ConversionFailed as e:
                raise e.at(f"[{i}]") from None
        lit = _Literal()
        lit.collection.SetInParent()  # an empty list is still a (present) collection
        lit.collection.literals.extend(out)
        return lit

    def decode(self, lit: literals_pb2.Literal) -> Any:
        if lit.WhichOneof("value") != "collection":
            return self.mismatch(lit)
        decode = self.item.decode
        out = []
        for i, v in enumerate(lit.collection.literals):
            try:
                out.append(decode(v))
            except ConversionFailed as e:
                raise e.at(f"[{i}]") from None
        return out


class MapCodec(Codec):
    """dict[str, T] as a literal map, as flytekit does."""

    name = "Typed Dict"

    def __init__(self, python_type: Any, value: Codec) -> None:
        self.python_type = python_type
        self.value = value

    def make_literal_type(self) -> types_pb2.LiteralType:
        return types_pb2.LiteralType(map_value_type=self.value.literal_type)

    def matches(self, value: Any) -> bool:
        return isinstance(value, dict) and all(isinstance(k, str) and self.value.matches(v) for k, v in value.items())

    def encode(self, value: Any) -> literals_pb2.Literal:
        if not isinstance(value, dict):
            raise self.expected(value)
        encode = self.value.encode
        lit = _Literal()
        lit.map.SetInParent()  # an empty dict is still a (present) map
        literals = lit.map.literals
        for k, v in value.items():
            if not isinstance(k, str):
                raise ConversionFailed(f"expected str keys for {type_name(self.python_type)}, got {show_value(k)}")
            try:
                literals[k].CopyFrom(encode(v))
            except ConversionFailed as e:
                raise e.at(f"[{k!r}]") from None
        return lit

    def decode(self, lit: literals_pb2.Literal) -> Any:
        if lit.WhichOneof("value") != "map":
            return self.mismatch(lit)
        decode = self.value.decode
        out = {}
        for k, v in lit.map.literals.items():
            try:
                out[k] = decode(v)
            except ConversionFailed as e:
                raise e.at(f"[{k!r}]") from None
        return out


class MsgpackCodec(Codec):
    """Untyped dicts, dicts with non-string keys and mixed lists: msgpack in ``scalar.binary`` with tag "msgpack",
    typed STRUCT with the msgpack annotation, byte for byte as flytekit writes dicts."""

    name = "Typed Dict"

    def __init__(self, python_type: Any) -> None:
        self.python_type = python_type
        origin = typing.get_origin(python_type) or python_type
        self._container = list if origin is list else dict
        typed = bool(typing.get_args(python_type))
        self._dump = dumper(python_type) if typed else None
        self._load = loader(python_type) if typed else None

    def make_literal_type(self) -> types_pb2.LiteralType:
        return types_pb2.LiteralType(simple=types_pb2.STRUCT, annotation=msgpack_annotation())

    def matches(self, value: Any) -> bool:
        return isinstance(value, self._container)

    def encode(self, value: Any) -> literals_pb2.Literal:
        if not isinstance(value, self._container):
            raise self.expected(value)
        data = self._dump(value) if self._dump is not None else value
        try:
            packed = msgpack.packb(data, use_bin_type=True)
        except (TypeError, ValueError, OverflowError) as e:
            raise ConversionFailed(f"{type_name(self.python_type)} value cannot be encoded as msgpack: {e}") from None
        lit = _Literal()
        lit.scalar.binary.value = packed
        lit.scalar.binary.tag = MSGPACK
        return lit

    def decode(self, lit: literals_pb2.Literal) -> Any:
        kind = lit.WhichOneof("value")
        if kind == "scalar":
            scalar_kind = lit.scalar.WhichOneof("value")
            if scalar_kind == "binary" and lit.scalar.binary.tag == MSGPACK:
                try:
                    data = msgpack.unpackb(lit.scalar.binary.value, strict_map_key=False)
                except (ValueError, msgpack.ExtraData) as e:
                    raise ConversionFailed(f"msgpack binary literal does not decode: {e}") from None
                return self._load(data) if self._load is not None else data
            if scalar_kind == "generic":  # flytekit < 1.14 wrote dicts as a Struct
                data = struct_to_dict(lit.scalar.generic)
                return self._load(data) if self._load is not None else data
        if kind in ("map", "collection") and self._load is None:
            from flyteconnect.literals.infer import decode_untyped

            return decode_untyped(lit)
        return self.mismatch(lit)


def _tagged(lt: types_pb2.LiteralType, tag: str) -> types_pb2.LiteralType:
    out = types_pb2.LiteralType()
    out.CopyFrom(lt)
    out.structure.Clear()
    out.structure.tag = tag
    return out


def _essence(lt: types_pb2.LiteralType) -> types_pb2.LiteralType:
    out = types_pb2.LiteralType()
    out.CopyFrom(lt)
    for field in ("structure", "metadata", "annotation"):
        out.ClearField(field)
    return out


class UnionCodec(Codec):
    """Union and Optional: ``scalar.union`` holding the value and its variant type tagged with flytekit's transformer
    name. The variant is the one the value is exactly an instance of (a str prefers ``str`` over an Enum)."""

    name = "Typed Union"

    def __init__(self, python_type: Any, variants: Sequence[Codec]) -> None:
        self.python_type = python_type
        self.variants = list(variants)
        self._types: list[types_pb2.LiteralType] | None = None

    def variant_types(self) -> list[types_pb2.LiteralType]:
        if self._types is None:
            self._types = [_tagged(v.literal_type, v.name) for v in self.variants]
        return self._types

    def make_literal_type(self) -> types_pb2.LiteralType:
        return types_pb2.LiteralType(union_type=types_pb2.UnionType(variants=self.variant_types()))

    def matches(self, value: Any) -> bool:
        return any(v.matches(value) for v in self.variants)

    def _choose(self, value: Any) -> int:
        hits = [i for i, v in enumerate(self.variants) if v.matches(value)]
        if len(hits) > 1 and isinstance(value, str):
            hits = [i for i in hits if self.variants[i].python_type is str] or hits
        if len(hits) > 1:
            names = ", ".join(type_name(self.variants[i].python_type) for i in hits)
            raise ConversionFailed(
                f"ambiguous value for {type_name(self.python_type)}: {show_value(value)} fits {names}"
            )
        if hits:
            return hits[0]
        # No exact fit: the first variant that accepts the value (an int for Optional[float]).
        for i, v in enumerate(self.variants):
            try:
                v.encode(value)
                return i
            except ConversionFailed:
                continue
        raise self.expected(value)

    def encode(self, value: Any) -> literals_pb2.Literal:
        i = self._choose(value)
        inner = self.variants[i].encode(value)
        lit = _Literal()
        lit.scalar.union.value.CopyFrom(inner)
        lit.scalar.union.type.CopyFrom(self.variant_types()[i])
        return lit

    def decode(self, lit: literals_pb2.Literal) -> Any:
        if lit.WhichOneof("value") == "scalar" and lit.scalar.WhichOneof("value") == "union":
            union = lit.scalar.union
            inner = union.value
            tag = union.type.structure.tag
            candidates = [v for v in self.variants if v.name == tag] if tag else []
            if len(candidates) > 1:
                stored = _essence(union.type)
                exact = [v for v in candidates if _essence(v.literal_type) == stored]
                candidates = exact + [v for v in candidates if v not in exact]
            order = candidates + [v for v in self.variants if v not in candidates]
        else:
            inner, order = lit, self.variants
        for v in order:
            try:
                return v.decode(inner)
            except ConversionFailed:
                continue
        raise ConversionFailed(f"expected a literal of {type_name(self.python_type)}, got {describe_literal(inner)}")
