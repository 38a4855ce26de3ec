"""The one place where exceptions become gRPC status codes.

``to_status(exc, ...)`` maps any exception to a ``(grpc.StatusCode, details)`` pair:

==========================================  ====================
exception                                   status
==========================================  ====================
``ConnectorNotFound``                       NOT_FOUND
``InvalidRequest`` (ResourceMetaError...)   INVALID_ARGUMENT
``Unimplemented``, ``NotImplementedError``  UNIMPLEMENTED
``WrongConnectorKind``                      FAILED_PRECONDITION
``CallTimeout``, ``TimeoutError``           DEADLINE_EXCEEDED
``TransientError``                          UNAVAILABLE
``ConnectorBug`` and anything else          INTERNAL
==========================================  ====================

Details are one short line naming the operation, the task category and the connector, then the exception; they are
truncated far below gRPC's 8 KiB header limit. Tracebacks go to the server log only (``debug=True`` appends the last
frames to the details, for development). The server never answers UNKNOWN.

Details tell callers nothing of the server's own: secret values the server resolved become ``***``
(``flyteconnect.redaction``), and the server's file-system locations (working directory, home, the Python
installation and site-packages, the directories on ``sys.path``) become ``<cwd>``, ``<home>``, ``<python>`` and
``<server>``. The server log keeps the paths (never the secrets: see ``RedactingFilter``).
"""

from __future__ import annotations

import asyncio
import functools
import os
import re
import sys
import sysconfig
import traceback
from pathlib import Path

import grpc

from flyteconnect import redaction
from flyteconnect.errors import (
    ConnectorError,
    ConnectorNotFound,
    FlyteConnectError,
    InvalidRequest,
    TransientError,
)

__all__ = [
    "MAX_DETAILS",
    "CallFailed",
    "CallTimeout",
    "ConnectorBug",
    "Unimplemented",
    "WrongConnectorKind",
    "for_callers",
    "to_status",
]

MAX_DETAILS = 1024
"""Longest details string sent to callers (gRPC's header limit is 8 KiB; status details travel in a header)."""


class Unimplemented(FlyteConnectError):
    """The connector does not implement the requested optional method (get_metrics, get_logs)."""


class WrongConnectorKind(FlyteConnectError):
    """A sync connector addressed through the async service or the other way round."""


class CallTimeout(FlyteConnectError, TimeoutError):
    """A connector call did not finish within min(call deadline, per-connector timeout)."""


class ConnectorBug(ConnectorError):
    """The connector returned something the protocol cannot carry (wrong type, phase UNDEFINED, bad outputs)."""


class CallFailed(FlyteConnectError):
    """A dispatched call failed: carries the already mapped status, so adapters only need ``context.abort``.

    ``__cause__`` is the original exception; it was logged (with its traceback when unexpected) and counted.
    """

    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(details)
        self.code = code
        self.details = details


def _code_for(exc: BaseException) -> grpc.StatusCode:
    # Order matters: the most specific classes first (TransientError is a ConnectorError, LiteralError a TypeError).
    if isinstance(exc, CallFailed):
        return exc.code
    if isinstance(exc, ConnectorNotFound):
        return grpc.StatusCode.NOT_FOUND
    if isinstance(exc, InvalidRequest):
        return grpc.StatusCode.INVALID_ARGUMENT
    if isinstance(exc, (Unimplemented, NotImplementedError)):
        return grpc.StatusCode.UNIMPLEMENTED
    if isinstance(exc, WrongConnectorKind):
        return grpc.StatusCode.FAILED_PRECONDITION
    if isinstance(exc, TransientError):
        return grpc.StatusCode.UNAVAILABLE
    if isinstance(exc, (CallTimeout, TimeoutError, asyncio.TimeoutError)):
        return grpc.StatusCode.DEADLINE_EXCEEDED
    return grpc.StatusCode.INTERNAL


def is_expected(exc: BaseException) -> bool:
    """True for errors that describe the request or a known condition (logged without a traceback)."""
    return isinstance(exc, (FlyteConnectError, NotImplementedError)) and not isinstance(exc, ConnectorBug)


def truncate(text: str, limit: int = MAX_DETAILS) -> str:
    """``text`` on one line, cut to ``limit`` characters with an ellipsis."""
    one_line = " ".join(text.split())
    return one_line if len(one_line) <= limit else one_line[: limit - 3] + "..."


@functools.lru_cache(maxsize=8)
def _path_pattern(cwd: str, path: tuple[str, ...]) -> tuple[re.Pattern[str], dict[str, str]] | None:
    """A regex matching the server's own directories (whole path components only) and each one's label."""
    labels: dict[str, str] = {}

    def add(directory: str | None, label: str) -> None:
        if directory and os.path.isabs(directory):
            directory = os.path.normpath(directory)
            if directory != os.sep:  # "/" would swallow every path
                labels.setdefault(directory, label)

    add(cwd, "<cwd>")
    paths = sysconfig.get_paths()
    for name in ("purelib", "platlib", "stdlib", "platstdlib"):
        add(paths.get(name), "<python>")
    if sys.prefix != sys.base_prefix:  # a virtualenv's root is the server's; /usr is everyone's
        add(sys.prefix, "<python>")
    for entry in path:
        add(entry, "<server>")
    add(str(Path(__file__).resolve().parents[2]), "<server>")  # where flyteconnect itself is installed
    add(os.path.expanduser("~"), "<home>")
    if not labels:
        return None
    alternatives = "|".join(re.escape(d) for d in sorted(labels, key=len, reverse=True))
    return re.compile(rf"(?<![\w.~-])(?:{alternatives})(?![\w.~-])"), labels


def for_callers(text: str) -> str:
    """``text`` without the server's secret values and file-system locations (see the module docstring)."""
    text = redaction.redact(text)
    found = _path_pattern(os.getcwd(), tuple(sys.path))
    if found is None:
        return text
    pattern, labels = found
    return pattern.sub(lambda m: labels[m.group(0)], text)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, FlyteConnectError):
        return str(exc) or type(exc).__name__
    if isinstance(exc, NotImplementedError) and not str(exc):
        return "not implemented"
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def to_status(
    exc: BaseException,
    *,
    operation: str = "",
    category: str = "",
    connector: str = "",
    debug: bool = False,
) -> tuple[grpc.StatusCode, str]:
    """Map ``exc`` to a gRPC status code and a short details line (see the module table)."""
    code = _code_for(exc)
    if isinstance(exc, CallFailed):
        return code, exc.details
    where = " ".join(p for p in (operation, category) if p)
    if connector:
        where = f"{where} ({connector})" if where else connector
    prefix = f"{where}: " if where else ""
    if isinstance(exc, NotImplementedError) and not isinstance(exc, FlyteConnectError) and connector:
        message = f"{connector} does not implement {operation or 'this method'}"
    else:
        message = _describe(exc)
    details = for_callers(prefix + message)
    if debug and not is_expected(exc):
        frames = traceback.format_exception(type(exc), exc, exc.__traceback__)
        details = f"{truncate(details, MAX_DETAILS // 2)} | {for_callers(''.join(frames[-3:]))}"
    return code, truncate(details)
