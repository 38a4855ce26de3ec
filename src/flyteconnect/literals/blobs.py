"""Files, directories and structured datasets (by URI), and Literal values passed through unchanged."""

from __future__ import annotations

import os
from typing import Any

from flyteidl.core import literals_pb2, types_pb2

from flyteconnect.literals.base import Codec, ConversionFailed
from flyteconnect.literals.values import FlyteDirectory, FlyteFile, StructuredDataset

__all__ = ["BlobCodec", "LiteralCodec", "StructuredDatasetCodec", "as_v1_literal"]

_Literal = literals_pb2.Literal


def _uri(value: Any) -> str | None:
    """A path or URI from our value types, flytekit-like objects (``remote_source``/``path``), str or PathLike."""
    if isinstance(value, (FlyteFile, FlyteDirectory)):
        return value.path
    if isinstance(value, (str, os.PathLike)):
        return os.fspath(value)
    remote = getattr(value, "remote_source", None) or getattr(value, "path", None)
    return str(remote) if remote else None


class BlobCodec(Codec):
    """FlyteFile (single-part Blob) or FlyteDirectory (multipart Blob), with the format of ``FlyteFile["fmt"]``."""

    def __init__(self, cls: type[FlyteFile] | type[FlyteDirectory]) -> None:
        self.python_type = cls
        self.multipart = issubclass(cls, FlyteDirectory)
        self.name = "FlyteDirectory" if self.multipart else "FlyteFilePath"
        self.dimensionality = types_pb2.BlobType.MULTIPART if self.multipart else types_pb2.BlobType.SINGLE

    def make_literal_type(self) -> types_pb2.LiteralType:
        return types_pb2.LiteralType(
            blob=types_pb2.BlobType(format=self.python_type.format, dimensionality=self.dimensionality)
        )

    def matches(self, value: Any) -> bool:
        return isinstance(value, FlyteDirectory if self.multipart else FlyteFile)

    def encode(self, value: Any) -> literals_pb2.Literal:
        other = FlyteFile if self.multipart else FlyteDirectory
        uri = None if isinstance(value, other) else _uri(value)
        if not uri:
            raise self.expected(value)
        lit = _Literal()
        blob = lit.scalar.blob
        blob.metadata.type.format = self.python_type.format
        blob.metadata.type.dimensionality = self.dimensionality
        blob.uri = uri
        return lit

    def decode(self, lit: literals_pb2.Literal) -> Any:
        if lit.WhichOneof("value") == "scalar" and lit.scalar.WhichOneof("value") == "blob":
            return self.python_type(lit.scalar.blob.uri)
        return self.mismatch(lit)


class StructuredDatasetCodec(Codec):
    name = "StructuredDataset Transformer"
    python_type = StructuredDataset

    def make_literal_type(self) -> types_pb2.LiteralType:
        return types_pb2.LiteralType(structured_dataset_type=types_pb2.StructuredDatasetType())

    def matches(self, value: Any) -> bool:
        return isinstance(value, StructuredDataset)

    def encode(self, value: Any) -> literals_pb2.Literal:
        if isinstance(value, StructuredDataset):
            uri, fmt = value.uri, value.file_format
        elif isinstance(getattr(value, "uri", None), str):  # flytekit's StructuredDataset has uri and file_format
            uri, fmt = value.uri, getattr(value, "file_format", "") or ""
        else:
            raise self.expected(value)
        lit = _Literal()
        sd = lit.scalar.structured_dataset
        sd.uri = uri
        sd.metadata.structured_dataset_type.format = fmt
        return lit

    def decode(self, lit: literals_pb2.Literal) -> Any:
        if lit.WhichOneof("value") == "scalar" and lit.scalar.WhichOneof("value") == "structured_dataset":
            sd = lit.scalar.structured_dataset
            return StructuredDataset(sd.uri, sd.metadata.structured_dataset_type.format)
        return self.mismatch(lit)


def as_v1_literal(value: Any) -> literals_pb2.Literal | None:
    """``value`` as a ``flyteidl.core.Literal`` if it is one or a (wire-compatible) ``flyteidl2.core.Literal``."""
    if isinstance(value, literals_pb2.Literal):
        return value
    descriptor = getattr(value, "DESCRIPTOR", None)
    if descriptor is not None and getattr(descriptor, "full_name", "") == "flyteidl2.core.Literal":
        lit = _Literal()
        lit.ParseFromString(value.SerializeToString())
        return lit
    return None


class LiteralCodec(Codec):
    """A ``flyteidl.core.Literal`` given as the value (or the type): passed through unchanged both ways."""

    name = "Literal"
    python_type = literals_pb2.Literal

    def make_literal_type(self) -> types_pb2.LiteralType:
        raise ConversionFailed("a Literal has no LiteralType of its own")

    def matches(self, value: Any) -> bool:
        return as_v1_literal(value) is not None

    def encode(self, value: Any) -> literals_pb2.Literal:
        lit = as_v1_literal(value)
        if lit is None:
            raise self.expected(value)
        return lit

    def decode(self, lit: literals_pb2.Literal) -> Any:
        return lit
