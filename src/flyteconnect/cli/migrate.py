"""``flyteconnect migrate``: port a flytekit connector module (and its package's helper modules) to flyteconnect."""

from __future__ import annotations

from pathlib import Path

import click

__all__ = ["migrate_cmd"]


@click.command("migrate")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "-o",
    "--out",
    required=True,
    type=click.Path(path_type=Path),
    help="Output directory (package paths kept), or a .py file for a module that imports nothing local.",
)
def migrate_cmd(path: Path, out: Path) -> None:
    """Rewrite the flytekit connector module PATH to flyteconnect.

    Ports imports and the flytekit runtime helpers connectors use, follows imports of the module's own package,
    and lists each thing it could not port (file:line: flytekit name: why). Exits 0 only when everything ported.
    """
    try:
        from flyteconnect.migrate.project import display, migrate
    except ImportError as e:
        raise click.ClickException(f"{e}. Install the extra: pip install 'flyteconnect[migrate]'") from None
    import libcst

    try:
        result = migrate(path, out)
    except libcst.ParserSyntaxError as e:
        raise click.ClickException(f"{path}: not valid Python: {e}") from None
    for source, target in result.written.items():
        click.echo(f"wrote {display(target)} (from {display(source)})", err=True)
    blocking = 0
    for source, findings in result.findings.items():
        for f in findings:
            kind = "cannot port" if f.blocking else "note"
            blocking += f.blocking
            click.echo(f"{display(source)}:{f.line}: {kind}: {f.name}: {f.message}")
    if blocking:
        raise click.ClickException(f"{blocking} flytekit name(s) not ported; the output still imports them")
    click.echo(
        f"ported; load it with: flyteconnect serve -m {result.module_name} (with the output on PYTHONPATH)", err=True
    )
