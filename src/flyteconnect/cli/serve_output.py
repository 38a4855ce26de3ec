"""What ``serve`` and ``list`` print: the connector table (rich, plain, JSON rows or log records), load failures and
warnings, the ``listening on`` line, and the cause of a failed bind."""

from __future__ import annotations

import sys
from typing import Any

import click

__all__ = [
    "announce_line",
    "bind_error",
    "connector_rows",
    "connector_table",
    "listen_address",
    "log_table",
    "plain_table",
    "report_failures",
    "say_problem",
]


def connector_table(result: Any, title: str = "Connectors") -> Any:
    """A rich Table of the connectors in a LoadResult: name, task type, version, kind, methods, source."""
    from rich.table import Table

    table = Table(title=title)
    for column in ("Connector", "Task type", "Version", "Kind", "Methods", "Source"):
        table.add_column(column)
    for connector in result.registry.connectors():
        methods = connector.methods()
        flavours = {m.is_async for m in methods.values()}
        style = "async def" if flavours == {True} else "def" if flavours == {False} else "mixed"
        table.add_row(
            connector.name,
            connector.task_type_name,
            str(connector.task_type_version),
            "sync" if connector.is_sync else "async",
            f"{', '.join(methods)} ({style})",
            result.sources.get(str(connector.task_category), ""),
        )
    return table


def plain_table(result: Any) -> str:
    """The connector table as plain aligned text (for logs)."""
    rows = [("CONNECTOR", "TASK TYPE", "VERSION", "KIND", "METHODS", "SOURCE")]
    for connector in result.registry.connectors():
        methods = connector.methods()
        rows.append(
            (
                connector.name,
                connector.task_type_name,
                str(connector.task_type_version),
                "sync" if connector.is_sync else "async",
                ", ".join(f"{name} ({'async def' if m.is_async else 'def'})" for name, m in methods.items()),
                result.sources.get(str(connector.task_category), ""),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows)


def report_failures(console: Any, result: Any) -> None:
    """Print one line per plugin that failed to load, and one per likely mistake (a connector never registered)."""
    for source, reason in result.failures.items():
        console.print(f"[red]failed to load[/red] {source}: {reason}", markup=True, highlight=False)
    for source, reason in result.warnings.items():
        console.print(f"[yellow]warning:[/yellow] {source} {reason}", markup=True, highlight=False)


def connector_rows(result: Any) -> list[dict[str, Any]]:
    """The connectors of a LoadResult as plain dicts (``list --json`` and JSON logs)."""
    return [
        {
            "name": c.name,
            "task_type": c.task_type_name,
            "version": c.task_type_version,
            "is_sync": c.is_sync,
            "methods": {name: ("async def" if m.is_async else "def") for name, m in c.methods().items()},
            "source": result.sources.get(str(c.task_category), ""),
        }
        for c in result.registry.connectors()
    ]


def log_table(result: Any) -> None:
    """The connector table as log records (``--log-format json``): one per connector, failure and warning."""
    import logging

    log = logging.getLogger("flyteconnect.server")
    for row in connector_rows(result):
        log.info("serving %s (%s_v%s) from %s", row["name"], row["task_type"], row["version"], row["source"])
    for source, reason in result.failures.items():
        if not source.startswith("module "):  # load_connectors logged the modules' own failures
            log.error("failed to load %s: %s", source, reason)
    for source, reason in result.warnings.items():
        log.warning("%s %s", source, reason)


def announce_line(log_format: str) -> Any:
    """How serve announces its state: a plain stdout line, or (``--log-format json``) an INFO log record."""
    if log_format != "json":

        def echo(text: str) -> None:
            click.echo(text)
            sys.stdout.flush()

        return echo
    import logging

    return logging.getLogger("flyteconnect.server").info


def say_problem(log_format: str, level: str, text: str) -> None:
    """A readiness error or warning: a plain ``level: text`` line, or a log record of that level (JSON logs)."""
    if log_format == "json":
        import logging

        logging.getLogger("flyteconnect.server").log(logging.getLevelName(level.upper()), text)
    else:
        click.echo(f"{level}: {text}", err=True)


def listen_address(host: str, port: int) -> str:
    """``HOST:PORT`` as bound, saying when it is every address (and where a local client connects)."""
    from flyteconnect.server.workers import probe_host

    bare = host.strip("[]")
    if bare in ("", "::", "0.0.0.0"):
        return f"{host or '[::]'}:{port} (all addresses; locally {probe_host(host)}:{port})"
    return f"{host}:{port}"


def bind_error(host: str, port: int, error: BaseException) -> str | None:
    """gRPC says only "Failed to bind": find the cause by binding the address ourselves."""
    import errno
    import socket

    if "bind" not in str(error).lower() or not port:
        return None
    bare = host.strip("[]") or "::"
    family = socket.AF_INET6 if ":" in bare else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.bind((bare, port))
    except OSError as e:
        if e.errno == errno.EADDRINUSE:
            return f"cannot listen on {host}:{port}: address already in use (another server? use another --port)"
        return f"cannot listen on {host}:{port}: {e.strerror}"
    return None
