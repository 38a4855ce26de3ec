"""Task outputs: reading ``<output_prefix>/outputs.pb`` through fsspec, and shaping them as flytekit returns them."""

from __future__ import annotations

import collections
import functools
import os
import tempfile
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from flyteidl.core import literals_pb2

from flyteconnect.local.errors import OutputsNotFound

__all__ = ["RAW_PREFIX_ENV", "default_raw_prefix", "join_uri", "make_output_dir", "read_outputs_pb", "shape_outputs"]

RAW_PREFIX_ENV = "FLYTECONNECT_RAW_PREFIX"
OUTPUTS_FILE = "outputs.pb"

_tmp_lock = threading.Lock()
_tmp_prefix: str | None = None


def default_raw_prefix() -> str:
    """``$FLYTECONNECT_RAW_PREFIX``, else one temporary directory per process (created on first use)."""
    global _tmp_prefix
    env = os.environ.get(RAW_PREFIX_ENV)
    if env:
        return env
    with _tmp_lock:
        if _tmp_prefix is None:
            _tmp_prefix = tempfile.mkdtemp(prefix="flyteconnect-raw-")
        return _tmp_prefix


def is_local(uri: str) -> bool:
    """True for plain paths and file:// URIs."""
    return "://" not in uri or uri.startswith("file://")


def join_uri(prefix: str, *parts: str) -> str:
    """Join with ``/`` (object-store URIs) or the OS separator (local paths)."""
    if is_local(prefix) and not prefix.startswith("file://"):
        return os.path.join(prefix, *parts)
    return "/".join([prefix.rstrip("/"), *parts])


def make_output_dir(uri: str) -> None:
    """Create a local output directory (object stores need none)."""
    if is_local(uri):
        os.makedirs(uri.removeprefix("file://"), exist_ok=True)


def read_outputs_pb(output_prefix: str, storage_options: Mapping[str, Any] | None = None) -> literals_pb2.LiteralMap:
    """Read and parse ``<output_prefix>/outputs.pb`` (blocking: call it on a worker thread).

    Local paths are read directly; URLs (s3://, gs://...) through fsspec with ``storage_options``.
    """
    uri = join_uri(output_prefix, OUTPUTS_FILE)
    try:
        if is_local(uri):
            with open(uri.removeprefix("file://"), "rb") as f:
                data = f.read()
        else:
            import fsspec

            with fsspec.open(uri, "rb", **dict(storage_options or {})) as f:
                data = f.read()
    except FileNotFoundError:
        raise OutputsNotFound(
            f"the task succeeded without outputs in its Resource, and {uri} does not exist "
            "(the job should write its outputs there)"
        ) from None
    out = literals_pb2.LiteralMap()
    try:
        out.ParseFromString(data)
    except Exception as e:  # DecodeError: protobuf raises its own type per implementation
        raise OutputsNotFound(f"{uri} is not a serialized flyteidl.core.LiteralMap: {e}") from None
    return out


@functools.lru_cache(maxsize=256)
def _outputs_tuple(names: tuple[str, ...]) -> type:
    # rename=True keeps names that are not identifiers usable by position instead of failing.
    return collections.namedtuple("TaskOutputs", names, rename=True)  # type: ignore[misc]


def shape_outputs(names: Sequence[str], values: Mapping[str, Any]) -> Any:
    """None for no outputs, the value for one, a namedtuple (attribute access, declaration order) for several."""
    if not names:
        return None
    if len(names) == 1:
        return values[names[0]]
    return _outputs_tuple(tuple(names))(*(values[n] for n in names))
