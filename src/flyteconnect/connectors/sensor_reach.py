"""What the file sensor may look at: protocols and path prefixes set by the server's operator, never by a task.

A task names a path; the server decides whether its sensor may look there. ``SensorReach`` holds that decision:

- ``protocols``: remote protocols the sensor may use anywhere. By default the object stores (``s3``, ``gs``,
  ``abfs`` and their aliases ``s3a``, ``gcs``, ``abfss``, ``az``); ``http``, ``https``, ``zip``, ``memory``, ``ssh``
  and every other fsspec protocol are refused unless named here.
- ``roots``: path prefixes. A local directory (``/data/exports``) lets the sensor watch files under it: local files
  are refused unless the operator names at least one. A URL prefix (``s3://exports/incoming``) narrows its protocol
  (and its aliases) to the roots named for it, and allows that protocol even when it is not in ``protocols``.

Local paths are normalised before the check: made absolute (relative paths are refused), ``..`` resolved lexically
(so a path outside every root is refused without touching the file system), then symlinks resolved
(``os.path.realpath``) and checked again, so a link inside a root cannot lead out of it. The sensor then looks at the
resolved path. Chained URLs (``simplecache::s3://...``) and ``..`` segments in remote paths are refused.

``storage_options`` from a template may only set the keys in ``TEMPLATE_STORAGE_OPTIONS`` (``anon``): endpoints,
credentials, profiles and client settings come from the server's environment, never from a task.

The server's reach is set once at start (``flyteconnect serve --sensor-allow-protocol/--sensor-root``, or the
``FLYTECONNECT_SENSOR_ALLOW_PROTOCOLS`` / ``FLYTECONNECT_SENSOR_ROOTS`` environment variables) with
``set_default_reach``; a ``FileSensorConnector(reach=...)`` uses its own (tests, embedding).
"""

from __future__ import annotations

import os
import posixpath
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "DEFAULT_PROTOCOLS",
    "ENV_PROTOCOLS",
    "ENV_ROOTS",
    "TEMPLATE_STORAGE_OPTIONS",
    "ReachDenied",
    "SensorReach",
    "current_reach",
    "set_default_reach",
]

DEFAULT_PROTOCOLS = frozenset({"s3", "s3a", "gs", "gcs", "abfs", "abfss", "az"})
"""Remote protocols allowed when the operator names none: the object stores."""

TEMPLATE_STORAGE_OPTIONS = frozenset({"anon"})
"""``sensor_config.storage_options`` keys a task may set: ``anon`` only drops the server's credentials."""

ENV_PROTOCOLS = "FLYTECONNECT_SENSOR_ALLOW_PROTOCOLS"
"""Comma-separated protocols (replaces the default list; ``none`` allows no remote protocol)."""
ENV_ROOTS = "FLYTECONNECT_SENSOR_ROOTS"
"""Comma-separated roots: local directories and URL prefixes."""

LOCAL = "file"
_ALIASES = {"local": LOCAL, "s3a": "s3", "gcs": "gs", "abfss": "abfs", "az": "abfs"}
"""Protocols fsspec serves with the same file system: one is checked as the other."""

POLICY = "the server's file sensor policy"


class ReachDenied(ValueError):
    """A path or option outside the server's sensor reach; the message names the policy, never what the path holds."""


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
class SensorReach:
    """Protocols and path prefixes the file sensor may watch (see the module documentation)."""

    protocols: frozenset[str] = DEFAULT_PROTOCOLS
    roots: tuple[str, ...] = ()
    _local: tuple[tuple[str, str], ...] = field(init=False, repr=False, compare=False)
    """(lexical, resolved) form of each local root."""
    _remote: Mapping[str, tuple[str, ...]] = field(init=False, repr=False, compare=False)
    """Protocol family → the URL roots of that family, without their scheme."""

    def __post_init__(self) -> None:
        protocols = frozenset(p.strip() for p in self.protocols if p.strip())
        if any(_family(p) == LOCAL for p in protocols):
            raise ValueError("local files are not a protocol to allow: name directories as sensor roots instead")
        bad = sorted(p for p in protocols if "::" in p or "/" in p or ":" in p)
        if bad:
            raise ValueError(f"not a protocol name: {', '.join(bad)}")
        local: list[tuple[str, str]] = []
        remote: dict[str, list[str]] = {}
        for root in self.roots:
            protocol, rest = split_protocol(root.strip())
            if "::" in root:
                raise ValueError(f"sensor root {root!r}: chained URLs cannot be roots")
            if _family(protocol) == LOCAL:
                if not posixpath.isabs(rest):
                    raise ValueError(f"sensor root {root!r} must be an absolute directory")
                lexical = posixpath.normpath(rest)
                local.append((lexical, os.path.realpath(lexical)))
            else:
                prefix = rest.strip("/")
                if not prefix or ".." in prefix.split("/"):
                    raise ValueError(f"sensor root {root!r} must name a bucket (and optionally a prefix), without '..'")
                remote.setdefault(_family(protocol), []).append(prefix)
        object.__setattr__(self, "protocols", protocols)
        object.__setattr__(self, "roots", tuple(r.strip() for r in self.roots))
        object.__setattr__(self, "_local", tuple(local))
        object.__setattr__(self, "_remote", {k: tuple(v) for k, v in remote.items()})

    @classmethod
    def from_options(cls, protocols: Iterable[str] | None = None, roots: Iterable[str] | None = None) -> SensorReach:
        """From ``serve``-style lists: ``protocols`` None keeps the default, ``["none"]`` allows no remote protocol."""
        if protocols is None:
            chosen = DEFAULT_PROTOCOLS
        else:
            chosen = frozenset(p for p in (x.strip() for x in protocols) if p and p != "none")
        return cls(protocols=chosen, roots=tuple(r for r in (x.strip() for x in roots or ()) if r))

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> SensorReach:
        """From ``FLYTECONNECT_SENSOR_ALLOW_PROTOCOLS`` and ``FLYTECONNECT_SENSOR_ROOTS`` (comma-separated)."""
        env = os.environ if environ is None else environ
        protocols = env.get(ENV_PROTOCOLS)
        roots = env.get(ENV_ROOTS, "")
        return cls.from_options(None if protocols is None else protocols.split(","), roots.split(","))

    @property
    def local_allowed(self) -> bool:
        """Whether any local directory is a root."""
        return bool(self._local)

    def check(self, path: str) -> tuple[str, str]:
        """``(protocol, path to look at)`` for an allowed path (local paths resolved); ``ReachDenied`` otherwise.

        Nothing on the file system is read for a path lexically outside every local root, so a refusal says nothing
        about whether the path exists.
        """
        if "::" in path:
            raise ReachDenied(f"{POLICY} refuses chained URLs (::)")
        if "\x00" in path:
            raise ReachDenied(f"{POLICY} refuses paths with NUL characters")
        protocol, rest = split_protocol(path)
        family = _family(protocol)
        if family == LOCAL:
            return LOCAL, self._check_local(rest)
        roots = self._remote.get(family)
        if roots is None and family not in {_family(p) for p in self.protocols}:
            raise ReachDenied(
                f"{POLICY} does not allow {protocol}:// paths (the operator can allow the protocol with "
                "--sensor-allow-protocol or a URL prefix with --sensor-root)"
            )
        if ".." in rest.split("/"):
            raise ReachDenied(f"{POLICY} refuses '..' in remote paths")
        if roots is not None and not any(_under(rest.strip("/"), r) for r in roots):
            raise ReachDenied(f"{POLICY} allows {protocol}:// paths only under the prefixes the operator named")
        return protocol, path

    def _check_local(self, path: str) -> str:
        if not self._local:
            raise ReachDenied(f"{POLICY} refuses local paths: the operator named no sensor roots (--sensor-root)")
        if not posixpath.isabs(path):
            raise ReachDenied(f"{POLICY} refuses relative local paths")
        lexical = posixpath.normpath(path)
        if lexical.startswith("//"):  # POSIX keeps a leading '//': the same directory as '/' on Linux
            lexical = "/" + lexical.lstrip("/")
        if not any(_under(lexical, root) or _under(lexical, real) for root, real in self._local):
            raise ReachDenied(f"{POLICY} refuses local paths outside the server's sensor roots")
        resolved = os.path.realpath(lexical)
        if not any(_under(resolved, real) for _, real in self._local):
            raise ReachDenied(f"{POLICY} refuses local paths outside the server's sensor roots")
        return resolved

    def check_storage_options(self, options: Any) -> dict[str, Any]:
        """A template's ``storage_options`` if they only set ``TEMPLATE_STORAGE_OPTIONS``; ``ReachDenied`` otherwise."""
        if options is None:
            return {}
        if not isinstance(options, Mapping):
            raise ReachDenied("sensor_config.storage_options must be an object")
        refused = sorted(str(k) for k in options if k not in TEMPLATE_STORAGE_OPTIONS)
        if refused:
            raise ReachDenied(
                f"{POLICY} refuses storage_options {', '.join(refused)}: a task may set only "
                f"{', '.join(sorted(TEMPLATE_STORAGE_OPTIONS))}; endpoints and credentials come from the server"
            )
        if "anon" in options and not isinstance(options["anon"], bool):
            raise ReachDenied("storage_options.anon must be true or false")
        return dict(options)


_default: SensorReach | None = None
_default_lock = threading.Lock()


def current_reach() -> SensorReach:
    """The server's reach: the one set by ``set_default_reach``, else read once from the environment."""
    global _default
    reach = _default
    if reach is None:
        with _default_lock:
            if _default is None:
                _default = SensorReach.from_env()
            reach = _default
    return reach


def set_default_reach(reach: SensorReach | None) -> SensorReach | None:
    """Set the process's reach (None: read the environment again at next use); returns the previous one."""
    global _default
    with _default_lock:
        previous, _default = _default, reach
    return previous
