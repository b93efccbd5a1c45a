"""`escalator schemas`: export the JSON Schemas of the topic contracts."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from schemas import export_json_schemas

app = typer.Typer(help="The topic contracts as JSON Schema.", no_args_is_help=True)


@app.command("export")
def export(directory: Annotated[Path, typer.Argument(help="Folder to write into.")]) -> None:
    """Write one `<contract>.schema.json` per topic contract into DIRECTORY."""
    for path in export_json_schemas(directory):
        typer.echo(path)
