"""``python -m wsss`` runs the CLI."""

from wsss.cli.main import main

main()
