"""``flyteconnect new NAME``: write a connector package to start from (``flyteconnect.cli.scaffold``)."""

from __future__ import annotations

import keyword
import re
from pathlib import Path

import click

__all__ = ["names_for", "new"]

_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")


def names_for(name: str) -> dict[str, str]:
    """The scaffold's placeholders for project ``name``: ``my-connector`` -> package ``my_connector``, class
    ``MyConnector``, task type ``my_connector``."""
    if not _NAME.match(name):
        raise click.BadParameter("use letters, digits, - and _, starting with a letter (e.g. my-connector)")
    package = re.sub(r"[-_]+", "_", name).lower()
    if keyword.iskeyword(package) or package in ("flyteconnect", "test", "tests"):
        raise click.BadParameter(f"{package!r} cannot be the package name: choose another NAME")
    words = [w for w in re.split(r"[-_]+", name) if w]
    cls = "".join(w[:1].upper() + w[1:] for w in words)
    if not cls.endswith("Connector"):
        cls += "Connector"
    return {
        "__DIST__": re.sub(r"[-_]+", "-", name).lower(),
        "__PACKAGE__": package,
        "__CLASS__": cls,
        "__TASK_TYPE__": package,
    }


@click.command("new")
@click.argument("name")
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False),
    help="Where to write the project (default: ./NAME); must not exist or be empty.",
)
def new(name: str, directory: str | None) -> None:
    """Write a connector package NAME: pyproject with the entry point, a connector module with a task, tests using
    flyteconnect.testing, a README and a Dockerfile layer. It passes its tests and check as written."""
    from flyteconnect.cli.scaffold import FILES, render

    names = names_for(name)
    root = Path(directory or name)
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise click.UsageError(f"{root} exists and is not empty: choose another NAME or --dir")
    for relative, template in FILES.items():
        path = root / render(relative, names)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(render(template, names))
    package = names["__PACKAGE__"]
    click.echo(f"wrote {root}/ ({names['__CLASS__']}, task type {names['__TASK_TYPE__']}); next:")
    click.echo(f"  cd {root} && pip install -e '.[test]' && pytest && flyteconnect check {package}.connector")
