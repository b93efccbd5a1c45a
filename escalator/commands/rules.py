"""`escalator rules`: check, explain, test, schema and publish rule files."""

from __future__ import annotations

import typer

app = typer.Typer(help="Write, check, test and publish escalation rules.", no_args_is_help=True)
