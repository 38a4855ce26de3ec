"""``flyteconnect list``: what ``serve`` would load, from the same discovery, without starting a server."""

from __future__ import annotations

import json
import sys

import click

from flyteconnect.cli.serve import common_discovery_options, discover
from flyteconnect.cli.serve_output import connector_rows, connector_table, plain_table, report_failures

__all__ = ["list_cmd"]


@click.command("list")
@common_discovery_options
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print JSON: connectors, failures, warnings and unmatched --connector entries.",
)
@click.option(
    "--strict",
    is_flag=True,
    help="Exit non-zero when a connector source failed to load or a --connector matched nothing.",
)
def list_cmd(
    modules: tuple[str, ...],
    entry_points: bool,
    connectors: tuple[str, ...],
    flytekit_plugins: bool,
    as_json: bool,
    strict: bool,
) -> None:
    """List the connectors that serve would load.

    On a terminal: a table; in a pipe: plain aligned columns with full values (for grep and awk); --json for tools.
    """
    result = discover(modules, entry_points, connectors, flytekit_plugins)
    if as_json:
        data = {
            "connectors": connector_rows(result),
            "failures": result.failures,
            "warnings": result.warnings,
            "unmatched": result.unmatched,
        }
        click.echo(json.dumps(data, indent=2))
    elif sys.stdout.isatty():
        from rich.console import Console

        console = Console()
        console.print(connector_table(result))
        report_failures(console, result)
    else:
        click.echo(plain_table(result))
        for source, reason in result.failures.items():
            click.echo(f"failed to load {source}: {reason}", err=True)
        for source, reason in result.warnings.items():
            click.echo(f"warning: {source} {reason}", err=True)
    if not as_json:
        for entry in result.unmatched:  # serve refuses to start on these
            click.echo(f"--connector {entry} matches no connector", err=True)
    if strict and (result.failures or result.unmatched):
        raise click.ClickException(
            f"{len(result.failures)} connector source(s) failed to load, "
            f"{len(result.unmatched)} --connector entr{'y' if len(result.unmatched) == 1 else 'ies'} matched nothing"
        )
