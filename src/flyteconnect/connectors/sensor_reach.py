"""What the file sensor may look at: protocols and path prefixes set by the server's operator, never by a task.

A task names a path; the server decides whether its sensor may look there. ``SensorReach`` holds that decision, by
the rule every storage reach follows (``flyteconnect.connectors.storage_reach``):

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

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from flyteconnect.connectors.storage_reach import (
    DEFAULT_PROTOCOLS,
    LOCAL,
    ProcessDefault,
    ReachDenied,
    StorageReach,
    split_protocol,
)

__all__ = [
    "DEFAULT_PROTOCOLS",
    "ENV_PROTOCOLS",
    "ENV_ROOTS",
    "LOCAL",
    "TEMPLATE_STORAGE_OPTIONS",
    "ReachDenied",
    "SensorReach",
    "current_reach",
    "set_default_reach",
    "split_protocol",
]

TEMPLATE_STORAGE_OPTIONS = frozenset({"anon"})
"""``sensor_config.storage_options`` keys a task may set: ``anon`` only drops the server's credentials."""

ENV_PROTOCOLS = "FLYTECONNECT_SENSOR_ALLOW_PROTOCOLS"
"""Comma-separated protocols (replaces the default list; ``none`` allows no remote protocol)."""
ENV_ROOTS = "FLYTECONNECT_SENSOR_ROOTS"
"""Comma-separated roots: local directories and URL prefixes."""

POLICY = "the server's file sensor policy"


@dataclass(frozen=True)
class SensorReach(StorageReach):
    """Protocols and path prefixes the file sensor may watch (see the module documentation)."""

    POLICY: ClassVar[str] = POLICY
    ROOT: ClassVar[str] = "sensor root"
    ROOT_OPTION: ClassVar[str] = "--sensor-root"
    PROTOCOL_OPTION: ClassVar[str] = "--sensor-allow-protocol"
    ENV_PROTOCOLS: ClassVar[str] = ENV_PROTOCOLS
    ENV_ROOTS: ClassVar[str] = ENV_ROOTS

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


_default = ProcessDefault(SensorReach)


def current_reach() -> SensorReach:
    """The server's reach: the one set by ``set_default_reach``, else read once from the environment."""
    return _default.get()


def set_default_reach(reach: SensorReach | None) -> SensorReach | None:
    """Set the process's reach (None: read the environment again at next use); returns the previous one."""
    return _default.set(reach)
