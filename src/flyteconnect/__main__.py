"""``python -m flyteconnect`` runs the CLI."""

from flyteconnect.cli.main import main

main()
