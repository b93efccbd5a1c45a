"""`escalator connect`: run the inbound connectors."""

from __future__ import annotations

import typer

app = typer.Typer(help="Inbound connectors.", no_args_is_help=True)
