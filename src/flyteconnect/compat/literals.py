"""``flytekit.models.literals`` for connectors: ``LiteralMap`` is flyteconnect's view (it takes a dict of
literals, as flytekit's model does); the other literal models are the flyteidl protos, same field names."""

from __future__ import annotations

from flyteidl.core.literals_pb2 import (
    Binary,
    Blob,
    BlobMetadata,
    Literal,
    LiteralCollection,
    Primitive,
    Scalar,
    StructuredDataset,
    StructuredDatasetMetadata,
    Union,
    Void,
)

from flyteconnect.models import LiteralMap

__all__ = [
    "Binary",
    "Blob",
    "BlobMetadata",
    "Literal",
    "LiteralCollection",
    "LiteralMap",
    "Primitive",
    "Scalar",
    "StructuredDataset",
    "StructuredDatasetMetadata",
    "Union",
    "Void",
]
