"""`escalator db`: migrations and rebuilds of the case store."""

from __future__ import annotations

import typer

app = typer.Typer(help="The case store: migrate, rebuild.", no_args_is_help=True)
