"""``serve``'s limit options (connections, streams, keepalive, calls and reply bytes in flight) and the ``Limits``
they make (``flyteconnect.server.limits``). Zero turns a limit off where the help says so."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

__all__ = ["limit_options", "limits_from", "parse_size"]


def parse_size(text: str) -> int:
    """Bytes in ``text``: a number with an optional unit (``64MiB``, ``16mb``, ``512KiB``, ``1GiB``); ValueError."""
    units = {"kib": 1024, "kb": 1000, "mib": 1024**2, "mb": 1000**2, "gib": 1024**3, "gb": 1000**3, "b": 1}
    lowered = text.strip().lower()
    for suffix, factor in units.items():
        if lowered.endswith(suffix):
            return int(float(lowered[: -len(suffix)]) * factor)
    return int(lowered)


def _mib(value: int | None) -> str:
    return "0" if value is None else f"{value // (1024 * 1024)}MiB"


def limit_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """Add the limit options to a click command (defaults: ``Limits()``)."""
    from flyteconnect.server.limits import Limits

    d = Limits()
    options = [
        click.option(
            "--max-concurrent-rpcs",
            default=d.max_concurrent_rpcs or 0,
            show_default=True,
            type=click.IntRange(0),
            help="Calls being worked on before RESOURCE_EXHAUSTED (grpc caps all calls at 4x + 128); 0: no limit.",
        ),
        click.option(
            "--max-reply-bytes-in-flight",
            default=_mib(d.max_reply_bytes),
            show_default=True,
            help="Bytes of large replies written but not yet read by their callers before RESOURCE_EXHAUSTED; 0: none.",
        ),
        click.option(
            "--max-concurrent-streams",
            default=d.max_concurrent_streams,
            show_default=True,
            type=click.IntRange(1),
            help="Calls at once on one HTTP/2 connection (a client opening more at once sees some refused).",
        ),
        click.option(
            "--max-connections",
            default=d.max_connections or 0,
            show_default=True,
            type=click.IntRange(0),
            help="Open client connections; 0: no limit.",
        ),
        click.option(
            "--keepalive-time",
            default=d.keepalive_time,
            show_default=True,
            type=click.FloatRange(0.001),
            help="Seconds without activity before pinging a connection.",
        ),
        click.option(
            "--keepalive-timeout",
            default=d.keepalive_timeout,
            show_default=True,
            type=click.FloatRange(0.001),
            help="Seconds a ping may go unanswered before the connection is closed.",
        ),
        click.option(
            "--min-ping-interval",
            default=d.min_ping_interval,
            show_default=True,
            type=click.FloatRange(0.001),
            help="Shortest interval between a client's pings; a client pinging faster is disconnected.",
        ),
        click.option(
            "--max-connection-idle",
            default=d.max_connection_idle or 0,
            show_default=True,
            type=click.FloatRange(0),
            help="Seconds a connection may go without calls before it is closed (GOAWAY); 0: forever.",
        ),
        click.option(
            "--max-connection-age",
            default=d.max_connection_age or 0,
            show_default=True,
            type=click.FloatRange(0),
            help="Seconds after which a connection is asked to reconnect (GOAWAY); 0: never.",
        ),
        click.option(
            "--max-connection-age-grace",
            default=d.max_connection_age_grace,
            show_default=True,
            type=click.FloatRange(0),
            help="Seconds calls on a connection past its age get to finish before it is closed.",
        ),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def limits_from(opts: dict[str, Any]) -> Any:
    """The ``Limits`` the options in ``opts`` ask for (click.BadParameter on a malformed size)."""
    from flyteconnect.server.limits import Limits

    try:
        reply_bytes = parse_size(opts["max_reply_bytes_in_flight"])
    except ValueError:
        raise click.BadParameter(
            f"not a size: {opts['max_reply_bytes_in_flight']}", param_hint="--max-reply-bytes-in-flight"
        ) from None
    return Limits(
        max_concurrent_rpcs=opts["max_concurrent_rpcs"] or None,
        max_reply_bytes=reply_bytes or None,
        max_concurrent_streams=opts["max_concurrent_streams"],
        max_connections=opts["max_connections"] or None,
        keepalive_time=opts["keepalive_time"],
        keepalive_timeout=opts["keepalive_timeout"],
        min_ping_interval=opts["min_ping_interval"],
        max_connection_idle=opts["max_connection_idle"] or None,
        max_connection_age=opts["max_connection_age"] or None,
        max_connection_age_grace=opts["max_connection_age_grace"],
    )
