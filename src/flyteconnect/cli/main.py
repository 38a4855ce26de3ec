"""The ``flyteconnect`` command group.

Subcommands live in their own modules and are imported only when invoked, so ``flyteconnect --help`` is fast and a
missing optional dependency of one command does not break the others. Only this entry point exits the process.
"""

from __future__ import annotations

import importlib
import signal
import sys
from typing import Any, NoReturn


def _stopped_early(signum: int, frame: Any) -> NoReturn:
    raise SystemExit(0)  # nothing started yet: a stop signal is a clean exit (serve takes over once it runs)


if sys.argv[1:2] == ["serve"]:  # before importing click: a rollout may stop a pod that is still starting
    for _sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(_sig, _stopped_early)

import click  # noqa: E402 - after the stop signals are handled

import flyteconnect  # noqa: E402

# command name -> "module:attribute" of a click.Command
COMMANDS: dict[str, str] = {
    "serve": "flyteconnect.cli.serve:serve",
    "list": "flyteconnect.cli.list_cmd:list_cmd",
    "run": "flyteconnect.cli.run:run",
    "check": "flyteconnect.cli.check:check",
    "migrate": "flyteconnect.cli.migrate:migrate_cmd",
    "new": "flyteconnect.cli.new:new",
}

HELP: dict[str, str] = {
    "serve": "Serve connectors over gRPC (Flyte 1 and Flyte 2 protocols).",
    "list": "List the connectors that serve would load.",
    "run": "Run a connector task locally or against a server.",
    "check": "Run the conformance checklist against a connector module.",
    "migrate": "Port a flytekit connector module to flyteconnect.",
    "new": "Write a connector package to start from (tests, entry point, Dockerfile).",
}


class LazyGroup(click.Group):
    """A click group whose subcommands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module_name, attr = target.split(":")
        try:
            module = importlib.import_module(module_name)
        except ImportError as e:
            raise click.ClickException(
                f"'{cmd_name}' is unavailable: {e}. Install the extras: pip install 'flyteconnect[all]'"
            ) from None
        command: click.Command = getattr(module, attr)
        return command

    def format_commands(self, ctx: click.Context, formatter: Any) -> None:
        rows = [(name, HELP.get(name, "")) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(flyteconnect.__version__, prog_name="flyteconnect")
def cli() -> None:
    """flyteconnect: write, test and serve Flyte connectors."""


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="flyteconnect")


if __name__ == "__main__":
    main()
