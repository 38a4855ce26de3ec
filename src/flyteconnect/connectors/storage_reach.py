"""Where a built-in connector may read or write files: protocols and path prefixes the operator sets, never a task.

A task names a path (the file sensor's ``path`` input, the ``output_prefix`` results are written under); the server
decides whether a connector may use it. A ``StorageReach`` holds that decision:

- ``protocols``: remote protocols allowed anywhere. By default the object stores (``s3``, ``gs``, ``abfs`` and their
  aliases ``s3a``, ``gcs``, ``abfss``, ``az``); ``http``, ``https``, ``zip``, ``memory``, ``ssh`` and every other
  fsspec protocol are refused unless named.
- ``roots``: path prefixes. A local directory (``/data/exports``) allows the files under it: local files are refused
  unless the operator names at least one. A URL prefix (``s3://exports/incoming``) narrows its protocol (and its
  aliases) to the roots named for it, and allows that protocol even when it is not in ``protocols``.

Local paths are normalised before the check: made absolute (relative paths are refused), ``..`` resolved lexically
(so a path outside every root is refused without touching the file system), then symlinks resolved
(``os.path.realpath``) and checked again, so a link inside a root cannot lead out of it. The connector then uses the
resolved path. Chained URLs (``simplecache::s3://...``), NUL characters and ``..`` segments in remote paths are refused.

Two reaches use this rule, each set once at start by ``flyteconnect serve`` and separately:

- the file sensor's (``flyteconnect.connectors.sensor_reach``: ``--sensor-root``, ``--sensor-allow-protocol``);
- where connectors write outputs (``OutputReach`` here: ``--output-root``, ``--output-allow-protocol``, or
  ``FLYTECONNECT_OUTPUT_ROOTS`` / ``FLYTECONNECT_OUTPUT_ALLOW_PROTOCOLS``), read with ``current_output_reach()``.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import posixpath
import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import ClassVar, Generic, TypeVar

__all__ = [
    "DEFAULT_PROTOCOLS",
    "LOCAL",
    "OutputReach",
    "ReachDenied",
    "StorageReach",
    "current_output_reach",
    "local_run_output",
    "set_output_reach",
    "split_protocol",
]

DEFAULT_PROTOCOLS = frozenset({"s3", "s3a", "gs", "gcs", "abfs", "abfss", "az"})
"""Remote protocols allowed when the operator names none: the object stores."""

LOCAL = "file"
_ALIASES = {"local": LOCAL, "s3a": "s3", "gcs": "gs", "abfss": "abfs", "az": "abfs"}
"""Protocols fsspec serves with the same file system: one is checked as the other."""


class ReachDenied(ValueError):
    """A path outside the server's reach; the message names the policy, never what the path holds."""


def _family(protocol: str) -> str:
    return _ALIASES.get(protocol, protocol)


def split_protocol(path: str) -> tuple[str, str]:
    """``(protocol, rest)``: ``("s3", "bucket/key")`` for ``s3://bucket/key``, ``("file", path)`` without a scheme."""
    protocol, sep, rest = path.partition("://")
    if not sep:
        return LOCAL, path
    return protocol, rest


def _under(path: str, root: str) -> bool:
    return path == root or path.startswith(root if root.endswith("/") else root + "/")


@dataclass(frozen=True)
class StorageReach:
    """Protocols and path prefixes a connector may use (see the module documentation).

    Subclasses name their policy, options and environment variables (the class variables), which every message uses.
    """

    protocols: frozenset[str] = DEFAULT_PROTOCOLS
    roots: tuple[str, ...] = ()
    _local: tuple[tuple[str, str], ...] = field(init=False, repr=False, compare=False)
    """(lexical, resolved) form of each local root."""
    _remote: Mapping[str, tuple[str, ...]] = field(init=False, repr=False, compare=False)
    """Protocol family → the URL roots of that family, without their scheme."""

    POLICY: ClassVar[str] = "the server's storage policy"
    ROOT: ClassVar[str] = "root"
    """What a root is called in messages: ``sensor root``, ``output root``."""
    ROOT_OPTION: ClassVar[str] = "a root"
    PROTOCOL_OPTION: ClassVar[str] = "the allowed protocols"
    ENV_PROTOCOLS: ClassVar[str] = ""
    ENV_ROOTS: ClassVar[str] = ""

    def __post_init__(self) -> None:
        protocols = frozenset(p.strip() for p in self.protocols if p.strip())
        if any(_family(p) == LOCAL for p in protocols):
            raise ValueError(f"local files are not a protocol to allow: name directories as {self.ROOT}s instead")
        bad = sorted(p for p in protocols if "::" in p or "/" in p or ":" in p)
        if bad:
            raise ValueError(f"not a protocol name: {', '.join(bad)}")
        local: list[tuple[str, str]] = []
        remote: dict[str, list[str]] = {}
        for root in self.roots:
            protocol, rest = split_protocol(root.strip())
            if "::" in root:
                raise ValueError(f"{self.ROOT} {root!r}: chained URLs cannot be roots")
            if _family(protocol) == LOCAL:
                if not posixpath.isabs(rest):
                    raise ValueError(f"{self.ROOT} {root!r} must be an absolute directory")
                lexical = posixpath.normpath(rest)
                local.append((lexical, os.path.realpath(lexical)))
            else:
                prefix = rest.strip("/")
                if not prefix or ".." in prefix.split("/"):
                    raise ValueError(f"{self.ROOT} {root!r} must name a bucket (and optionally a prefix), without '..'")
                remote.setdefault(_family(protocol), []).append(prefix)
        object.__setattr__(self, "protocols", protocols)
        object.__setattr__(self, "roots", tuple(r.strip() for r in self.roots))
        object.__setattr__(self, "_local", tuple(local))
        object.__setattr__(self, "_remote", {k: tuple(v) for k, v in remote.items()})

    @classmethod
    def from_options(cls: type[R], protocols: Iterable[str] | None = None, roots: Iterable[str] | None = None) -> R:
        """From ``serve``-style lists: ``protocols`` None keeps the default, ``["none"]`` allows no remote protocol."""
        if protocols is None:
            chosen = DEFAULT_PROTOCOLS
        else:
            chosen = frozenset(p for p in (x.strip() for x in protocols) if p and p != "none")
        return cls(protocols=chosen, roots=tuple(r for r in (x.strip() for x in roots or ()) if r))

    @classmethod
    def from_env(cls: type[R], environ: Mapping[str, str] | None = None) -> R:
        """From the class's two environment variables (comma-separated protocols and roots)."""
        env = os.environ if environ is None else environ
        protocols = env.get(cls.ENV_PROTOCOLS) if cls.ENV_PROTOCOLS else None
        roots = env.get(cls.ENV_ROOTS, "") if cls.ENV_ROOTS else ""
        return cls.from_options(None if protocols is None else protocols.split(","), roots.split(","))

    @property
    def local_allowed(self) -> bool:
        """Whether any local directory is a root."""
        return bool(self._local)

    def check(self, path: str) -> tuple[str, str]:
        """``(protocol, path to use)`` for an allowed path (local paths resolved); ``ReachDenied`` otherwise.

        Nothing on the file system is read for a path lexically outside every local root, so a refusal says nothing
        about whether the path exists.
        """
        if "::" in path:
            raise ReachDenied(f"{self.POLICY} refuses chained URLs (::)")
        if "\x00" in path:
            raise ReachDenied(f"{self.POLICY} refuses paths with NUL characters")
        protocol, rest = split_protocol(path)
        family = _family(protocol)
        if family == LOCAL:
            return LOCAL, self._check_local(rest)
        roots = self._remote.get(family)
        if roots is None and family not in {_family(p) for p in self.protocols}:
            raise ReachDenied(
                f"{self.POLICY} does not allow {protocol}:// paths (the operator can allow the protocol with "
                f"{self.PROTOCOL_OPTION} or a URL prefix with {self.ROOT_OPTION})"
            )
        if ".." in rest.split("/"):
            raise ReachDenied(f"{self.POLICY} refuses '..' in remote paths")
        if roots is not None and not any(_under(rest.strip("/"), r) for r in roots):
            raise ReachDenied(f"{self.POLICY} allows {protocol}:// paths only under the prefixes the operator named")
        return protocol, path

    def _check_local(self, path: str) -> str:
        if not self._local:
            none = f"the operator named no {self.ROOT}s ({self.ROOT_OPTION})"
            raise ReachDenied(f"{self.POLICY} refuses local paths: {none}")
        if not posixpath.isabs(path):
            raise ReachDenied(f"{self.POLICY} refuses relative local paths")
        lexical = posixpath.normpath(path)
        if lexical.startswith("//"):  # POSIX keeps a leading '//': the same directory as '/' on Linux
            lexical = "/" + lexical.lstrip("/")
        outside = f"{self.POLICY} refuses local paths outside the server's {self.ROOT}s"
        if not any(_under(lexical, root) or _under(lexical, real) for root, real in self._local):
            raise ReachDenied(outside)
        resolved = os.path.realpath(lexical)
        if not any(_under(resolved, real) for _, real in self._local):
            raise ReachDenied(outside)
        return resolved


R = TypeVar("R", bound=StorageReach)


@dataclass(frozen=True)
class OutputReach(StorageReach):
    """Where connectors may write outputs (the PostgreSQL connector's datasets): the object stores by default."""

    POLICY: ClassVar[str] = "the server's output policy"
    ROOT: ClassVar[str] = "output root"
    ROOT_OPTION: ClassVar[str] = "--output-root"
    PROTOCOL_OPTION: ClassVar[str] = "--output-allow-protocol"
    ENV_PROTOCOLS: ClassVar[str] = "FLYTECONNECT_OUTPUT_ALLOW_PROTOCOLS"
    ENV_ROOTS: ClassVar[str] = "FLYTECONNECT_OUTPUT_ROOTS"


class ProcessDefault(Generic[R]):
    """The process's reach of one kind: the one set at start, else read once from the environment."""

    def __init__(self, kind: type[R]) -> None:
        self._kind = kind
        self._value: R | None = None
        self._lock = threading.Lock()

    def get(self) -> R:
        """The reach set last, or the environment's (read at first use)."""
        value = self._value
        if value is None:
            with self._lock:
                if self._value is None:
                    self._value = self._kind.from_env()
                value = self._value
        return value

    def set(self, reach: R | None) -> R | None:
        """Set the reach (None: read the environment again at next use); returns the previous one."""
        with self._lock:
            previous, self._value = self._value, reach
        return previous


_output = ProcessDefault(OutputReach)
_run_output: contextvars.ContextVar[OutputReach | None] = contextvars.ContextVar("flyteconnect_output", default=None)


def current_output_reach() -> OutputReach:
    """Where outputs may be written: the reach ``set_output_reach`` set, else the environment's.

    Inside ``local_run_output`` (an in-process local run), the run's own local output directory is allowed too.
    """
    return _run_output.get() or _output.get()


@contextlib.contextmanager
def local_run_output(output_prefix: str) -> Iterator[None]:
    """Allow writes under a local run's own ``output_prefix`` (the in-process runner chose it; no server involved).

    A remote prefix adds nothing: object stores follow the process's reach (a URL root would narrow it instead).
    """
    protocol, rest = split_protocol(output_prefix)
    if _family(protocol) != LOCAL or not posixpath.isabs(rest):
        yield
        return
    base = _output.get()
    token = _run_output.set(OutputReach(base.protocols, (*base.roots, rest)))
    try:
        yield
    finally:
        _run_output.reset(token)


def set_output_reach(reach: OutputReach | None) -> OutputReach | None:
    """Set the process's output reach (``flyteconnect serve`` does, from its options); returns the previous one."""
    return _output.set(reach)
