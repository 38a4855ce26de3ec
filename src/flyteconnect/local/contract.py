"""What a served connector must return, checked in-process too, so a laptop run fails where the server would.

The server answers INTERNAL when ``create`` returns something that is not its ResourceMeta, when ``get``/``do``
return something that is not a Resource, a Resource with phase UNDEFINED or an unknown phase, ``do`` a non-terminal
phase, or outputs that cannot become literals. Outputs are converted here with the server's own function
(``flyteconnect.literals.to_literal_map_bytes``, what the reply path writes), whatever the task declares. Messages
name the connector method and where it is defined, so the author can go straight to the line.

``StallWatch`` runs the server's event-loop watchdog (``flyteconnect.server.watchdog``, standard library only) over
in-process runs, so an ``async def`` method that blocks is reported locally as it is when served.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
from collections.abc import Iterable
from types import CodeType
from typing import Any

from flyteconnect.connector import ConnectorBase, ConnectorMethod, Phase, Resource, is_terminal_phase
from flyteconnect.errors import ConnectorError

__all__ = ["ConnectorContractError", "StallWatch", "check_meta", "check_resource", "short_path", "where"]

log = logging.getLogger("flyteconnect.local")

STALL_THRESHOLD = 0.5
"""Seconds, the server's default ``--stall-threshold``."""


class ConnectorContractError(ConnectorError):
    """A connector returned what the server would refuse with INTERNAL (the message names the method and line)."""


def where(func: Any) -> str:
    """``file.py:line`` of a function's definition (relative to the working directory when inside it)."""
    target = inspect.unwrap(func)
    code = getattr(target, "__code__", None)
    if code is None:
        return getattr(target, "__qualname__", repr(target))
    return f"{short_path(code.co_filename)}:{code.co_firstlineno}"


def short_path(path: str) -> str:
    """``path`` relative to the working directory when it is inside it (the rest of the text kept)."""
    try:
        relative = os.path.relpath(path)
    except ValueError:  # another drive (Windows)
        return path
    return relative if not relative.startswith("..") else path


def _method_label(connector: ConnectorBase, method: ConnectorMethod) -> str:
    return f"{connector.name}.{method.name}() ({where(method.func)})"


def check_meta(connector: ConnectorBase, method: ConnectorMethod, meta: Any) -> bytes:
    """The encoded resource_meta of a ``create`` result, or ConnectorError saying what the server would refuse."""
    meta_type = getattr(connector, "metadata_type", None)
    if meta_type is not None and not isinstance(meta, meta_type):
        raise ConnectorContractError(
            f"{_method_label(connector, method)} returned {type(meta).__name__}, not its {meta_type.__name__}: "
            f"return {meta_type.__name__}(...) (the server answers INTERNAL)"
        )
    data = meta.encode()
    if not isinstance(data, (bytes, bytearray)):
        raise ConnectorContractError(f"{type(meta).__name__}.encode() returned {type(data).__name__}, not bytes")
    return bytes(data)


def check_resource(connector: ConnectorBase, method: ConnectorMethod, resource: Any) -> Resource:
    """``resource`` if the server could send it; ConnectorError naming the method and the problem otherwise."""
    label = _method_label(connector, method)
    if not isinstance(resource, Resource):
        raise ConnectorContractError(f"{label} returned {type(resource).__name__}, expected flyteconnect.Resource")
    phase = resource.phase
    if phase is None or phase not in Phase._value2member_map_ or phase == Phase.UNDEFINED:
        what = "UNDEFINED" if not phase else f"an unknown phase {phase!r}"
        raise ConnectorContractError(
            f"{label} returned a Resource with phase {what}; "
            "return a real phase (QUEUED, RUNNING, SUCCEEDED, FAILED...)"
        )
    if method.name == "do" and not is_terminal_phase(phase):
        name = Phase(phase).name
        raise ConnectorContractError(f"{label} returned phase {name}; a sync connector must return a terminal phase")
    if resource.outputs is not None:
        from flyteconnect.literals import to_literal_map_bytes

        try:
            to_literal_map_bytes(resource.outputs)  # the server's reply path: what cannot go on the wire fails here
        except Exception as e:
            raise ConnectorContractError(f"{label} returned a Resource that cannot be sent: {e}") from e
    return resource


class StallWatch:
    """The server's loop watchdog over in-process connector calls: warns when an ``async def`` method blocks."""

    def __init__(self, threshold: float = STALL_THRESHOLD, *, warn: bool = True) -> None:
        self.threshold = threshold
        self.warn = warn
        self._owners: dict[CodeType, tuple[ConnectorBase, str]] = {}
        self._watchdogs: dict[asyncio.AbstractEventLoop, Any] = {}
        self.stalls: list[tuple[str, str, float, str]] = []
        """(connector name, method, seconds so far, file:line where the loop was) of each stall seen."""

    def watch(self, connectors: Iterable[ConnectorBase]) -> None:
        """Start watching the running loop (once per loop) for blocking calls of ``connectors``' async methods."""
        for connector in connectors:
            for name, method in connector.methods().items():
                code = getattr(inspect.unwrap(method.func), "__code__", None)
                if method.is_async and code is not None:
                    self._owners.setdefault(code, (connector, name))
        loop = asyncio.get_running_loop()
        if loop not in self._watchdogs:
            from flyteconnect.server.watchdog import LoopWatchdog

            # Quiet watches (flyteconnect check) want the line of every stall, even on a loaded machine.
            watchdog = LoopWatchdog(
                self.threshold, self._on_stall, lambda: self._owners, log_resume=self.warn, forgive_starvation=self.warn
            )
            watchdog.start()
            self._watchdogs[loop] = watchdog

    def stop_all(self) -> None:
        """Stop every watchdog this watch started."""
        for watchdog in self._watchdogs.values():
            watchdog.stop()
        self._watchdogs.clear()

    def stop(self) -> None:
        """Stop the watchdog of the running loop (if any)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        watchdog = self._watchdogs.pop(loop, None)
        if watchdog is not None:
            watchdog.stop()

    def _on_stall(self, stall: Any) -> None:
        if stall.owner is None:
            return  # the runner's own loop, or the user's code around it: not a connector's to report
        connector, method = stall.owner
        self.stalls.append((connector.name, method, stall.seconds, stall.location))
        if not self.warn:
            return
        log.warning(
            "event loop blocked for over %.2fs by %s (task type %s), async method %s() at %s: it must not call "
            "blocking code; make it a plain def or await non-blocking calls (the server reports this too)",
            stall.seconds,
            connector.name,
            connector.task_category,
            method,
            stall.location,
        )
