"""`escalator demo`: run the whole pipeline on the embedded broker with sample traffic."""

from __future__ import annotations

import asyncio
import json
from dataclasses import asdict
from typing import Annotated

import typer
from rich.console import Console


def run_demo(
    duration: Annotated[
        float | None, typer.Option(help="Seconds of traffic; default: until Ctrl-C.")
    ] = None,
    rate: Annotated[float, typer.Option(help="Requests per second sent to the ingress.")] = 40.0,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print only the final tally, as one JSON object.")
    ] = False,
) -> None:
    """Start broker, worker, ingress and projection; send realistic traffic; print a tally."""
    from escalator.demo.runner import run

    console = Console(stderr=as_json)
    try:
        tally = asyncio.run(run(duration, rate, as_json, console))
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
    if as_json:
        typer.echo(json.dumps(asdict(tally), sort_keys=True))
    else:
        console.rule("final tally")
        for name, value in asdict(tally).items():
            if name != "endpoints":
                console.print(f"{name}: {value}")
    if tally.messages_unrouted:
        raise typer.Exit(1)
