"""``flyteconnect check MODULE``: run the conformance checklist on a connector module and report (exit 1 on failure)."""

from __future__ import annotations

import json
import sys

import click

__all__ = ["check"]

_STYLE = {"pass": "green", "fail": "bold red", "warn": "yellow", "skip": "dim"}
_MARK = {"pass": "PASS", "fail": "FAIL", "warn": "WARN", "skip": "SKIP"}


@click.command("check")
@click.argument("modules", nargs=-1)
@click.option(
    "-m",
    "--module",
    "module_options",
    multiple=True,
    metavar="MODULE",
    help="A module to check (as with serve, list and run); repeatable, or give modules as arguments.",
)
@click.option(
    "--input",
    "input_pairs",
    multiple=True,
    metavar="NAME=VALUE",
    help="An input of the job the run check creates (typed by the module's task when it has one); repeatable.",
)
@click.option("--timeout", default=10.0, show_default=True, help="Seconds each connector call may take.")
@click.option("--budget", default=30.0, show_default=True, help="Seconds the run check polls its job for.")
@click.option("--strict", is_flag=True, help="Warnings fail too.")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
def check(
    modules: tuple[str, ...],
    module_options: tuple[str, ...],
    input_pairs: tuple[str, ...],
    timeout: float,
    budget: float,
    strict: bool,
    as_json: bool,
) -> None:
    """Import MODULES (dotted paths or .py files, as arguments or -m) and check every connector they provide.

    Checks: metadata valid, every connector class registered, resource_meta round-trips, encode is deterministic,
    get on an unknown job is handled, delete is idempotent; run: one job driven as the server drives it (create with
    --input values or ones derived from the module's task, get until terminal, outputs converted to literals, delete
    twice); async methods do not block the event loop. Failures name the file and line to fix. Calls go through the
    connector's real client: run where its credentials (or a test double) are available.
    """
    from flyteconnect.testing.check import CheckReport, check_module

    specs = (*module_options, *modules)
    if not specs:
        raise click.UsageError("name a module to check: flyteconnect check my_connector.py (or -m my_connector.py)")
    inputs: dict[str, str] = {}
    for pair in input_pairs:
        name, eq, value = pair.partition("=")
        if not eq or not name:
            raise click.UsageError(f"--input expects NAME=VALUE, got {pair!r}")
        inputs[name] = value
    report = CheckReport()
    for spec in specs:
        report.results.extend(check_module(spec, timeout, inputs=inputs, budget=budget).results)
    if as_json:
        click.echo(json.dumps([r.__dict__ for r in report.results], indent=2))
    else:
        _print(report)
    code = report.exit_code(strict)
    if code:
        raise SystemExit(code)


def _print(report: object) -> None:
    from flyteconnect.testing.check import CheckReport

    assert isinstance(report, CheckReport)
    failed = len(report.failures())
    total = len(report.results)
    warned = sum(1 for r in report.results if r.status == "warn")
    summary = f"{total} check{'' if total == 1 else 's'}, {failed} failed"
    if warned:
        summary += f", {warned} warning{'' if warned == 1 else 's'}"
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        for r in report.results:
            click.echo(f"{_MARK[r.status]}  {r.connector}  {r.check}  {r.detail}")
        click.echo(summary)
        return
    table = Table(title="flyteconnect check", show_lines=False)
    for column in ("", "connector", "check", "detail"):
        table.add_column(column, overflow="fold")
    for r in report.results:
        table.add_row(f"[{_STYLE[r.status]}]{_MARK[r.status]}[/]", r.connector, r.check, r.detail)
    console = Console(file=sys.stdout, soft_wrap=False)
    console.print(table)
    console.print(f"[{'bold red' if failed else 'green'}]{summary}[/]")
