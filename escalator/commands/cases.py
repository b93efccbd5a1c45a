"""`escalator cases`: look at cases in the store."""

from __future__ import annotations

import typer

app = typer.Typer(help="Cases in the case store.", no_args_is_help=True)
