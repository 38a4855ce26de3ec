"""``flyteconnect list``: what ``serve`` would load, from the same discovery, without starting a server."""

from __future__ import annotations

import json
from typing import Any

import click

from flyteconnect.cli.serve import common_discovery_options, connector_table, discover, report_failures

__all__ = ["list_cmd"]


@click.command("list")
@common_discovery_options
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.option("--strict", is_flag=True, help="Exit non-zero when a connector source failed to load.")
def list_cmd(
    modules: tuple[str, ...],
    entry_points: bool,
    connectors: tuple[str, ...],
    flytekit_plugins: bool,
    as_json: bool,
    strict: bool,
) -> None:
    """List the connectors that serve would load."""
    result = discover(modules, entry_points, connectors, flytekit_plugins)
    if as_json:
        rows: list[dict[str, Any]] = [
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
        click.echo(json.dumps({"connectors": rows, "failures": result.failures}, indent=2))
    else:
        from rich.console import Console

        console = Console()
        console.print(connector_table(result))
        report_failures(console, result)
    if strict and result.failures:
        raise click.ClickException(f"{len(result.failures)} connector source(s) failed to load")
