"""`escalator broker`: the embedded Kafka-compatible broker (Tansu, memory only) in the foreground.

For trying Escalator without installing Kafka. Everything it stores is lost when it stops.
"""

from __future__ import annotations

import signal
from types import FrameType
from typing import Annotated

import typer

from escalator.embedded_broker import EmbeddedBroker, EmbeddedBrokerError


def run_broker(
    port: Annotated[
        int | None, typer.Option(help="Port on 127.0.0.1 to listen on (default: a free one).")
    ] = None,
) -> None:
    """Run an in-memory Kafka-compatible broker until Ctrl-C or SIGTERM."""

    def on_signal(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    # both explicitly: a shell starts background jobs with SIGINT ignored
    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        with EmbeddedBroker(port=port) as broker:
            typer.echo(
                f"Kafka-compatible broker (Tansu, memory only) on {broker.bootstrap_servers}"
            )
            typer.echo(f"  export KAFKA_BOOTSTRAP_SERVERS={broker.bootstrap_servers}")
            typer.echo("  export ESCALATOR_EMBEDDED_BROKER=tansu   # faust settings it needs")
            typer.echo("Ctrl-C stops it.")
            code = broker.wait()
            typer.echo(
                f"the broker exited on its own (exit {code}):\n{broker.log_tail()}", err=True
            )
        raise typer.Exit(1)
    except KeyboardInterrupt:
        typer.echo("stopped")
    except EmbeddedBrokerError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(1) from error
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
