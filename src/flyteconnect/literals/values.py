"""Light value types for blobs and datasets, so connectors can express them without flytekit.

They produce the same literal shapes as flytekit's ``FlyteFile``, ``FlyteDirectory`` and ``StructuredDataset``: a
file is a single-part Blob with a URI, a directory a multipart Blob, a dataset a ``structured_dataset`` with a URI and
a format. Nothing is uploaded or downloaded: the path is used as the URI as is.
"""

from __future__ import annotations

import functools
import os
from typing import Any, ClassVar

__all__ = ["FlyteDirectory", "FlyteFile", "StructuredDataset"]


class _BlobValue:
    """A path or URI with a blob format; ``Cls["csv"]`` is the same type with format ``"csv"``."""

    __slots__ = ("path",)
    format: ClassVar[str] = ""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)

    @property
    def uri(self) -> str:
        """The path, as the literal's URI."""
        return self.path

    def __class_getitem__(cls, fmt: Any) -> type[Any]:
        return with_format(cls, fmt if isinstance(fmt, str) else getattr(fmt, "__name__", str(fmt)))

    def __fspath__(self) -> str:
        return self.path

    def __eq__(self, other: object) -> bool:
        if isinstance(other, _BlobValue):
            return self.path == other.path and _kind(type(self)) is _kind(type(other))
        return NotImplemented

    def __hash__(self) -> int:
        return hash((_kind(type(self)), self.path))

    def __repr__(self) -> str:
        fmt = f", format={self.format!r}" if self.format else ""
        return f"{_kind(type(self)).__name__}({self.path!r}{fmt})"

    def __str__(self) -> str:
        return self.path


def _kind(cls: type) -> type:
    """FlyteFile or FlyteDirectory, for any of their format-specific subclasses."""
    return FlyteDirectory if issubclass(cls, FlyteDirectory) else FlyteFile


def with_format(cls: type[Any], fmt: str) -> type[Any]:
    """``cls`` (FlyteFile or FlyteDirectory, or a subclass) with blob format ``fmt``; same as ``cls[fmt]``."""
    return _with_format(_kind(cls), fmt)


@functools.cache
def _with_format(base: type[Any], fmt: str) -> type[Any]:
    # Cached so FlyteFile["csv"] is FlyteFile["csv"] (type analysis is cached per Python type).
    return type(f"{base.__name__}[{fmt!r}]", (base,), {"__slots__": (), "format": fmt, "__module__": base.__module__})


class FlyteFile(_BlobValue):
    """A file by path or URI (``s3://bucket/key``); literal: single-part Blob. ``FlyteFile["csv"]`` sets the format."""

    __slots__ = ()


class FlyteDirectory(_BlobValue):
    """A directory by path or URI; literal: multipart Blob. ``FlyteDirectory["csv"]`` sets the format."""

    __slots__ = ()


class StructuredDataset:
    """A dataset stored at ``uri`` in ``file_format`` (e.g. ``"parquet"``); literal: ``scalar.structured_dataset``."""

    __slots__ = ("file_format", "uri")

    def __init__(self, uri: str | os.PathLike[str], file_format: str = "") -> None:
        self.uri = os.fspath(uri)
        self.file_format = file_format

    def __eq__(self, other: object) -> bool:
        if isinstance(other, StructuredDataset):
            return (self.uri, self.file_format) == (other.uri, other.file_format)
        return NotImplemented

    def __hash__(self) -> int:
        return hash((self.uri, self.file_format))

    def __repr__(self) -> str:
        return f"StructuredDataset(uri={self.uri!r}, file_format={self.file_format!r})"
