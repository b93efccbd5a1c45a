"""`escalator rules publish`: validate rules and hand them to every running worker."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from escalator.rulefiles import RuleFilesError
from rules import RuleSetError

PublisherOption = Annotated[
    str | None,
    typer.Option(
        "--publisher", help="Who publishes (default: ESCALATOR_PUBLISHER, else the login name)."
    ),
]
MessageOption = Annotated[
    str | None, typer.Option("--message", "-m", help="Why, in words; kept in the history.")
]


@contextmanager
def kafka_trouble(doing: str) -> Iterator[None]:
    """Turn a Kafka failure into one line on stderr and exit status 1 (nothing half-done)."""
    from confluent_kafka import KafkaException

    from kafkaio.errors import PublishError
    from kafkaio.rules_history import HistoryReadError

    try:
        yield
    except (PublishError, HistoryReadError, KafkaException) as exc:
        typer.echo(f"error: {doing}: {exc}", err=True)
        raise typer.Exit(1) from None


def publish(
    path: Annotated[Path | None, typer.Argument(help="Rule file or folder of rule files.")] = None,
    publisher: PublisherOption = None,
    message: MessageOption = None,
    shadow: Annotated[
        str | None,
        typer.Option(
            "--shadow",
            help="Publish FILE|DIR as the shadow set every worker evaluates beside the "
            "active one without acting on it; `none` stops shadowing.",
        ),
    ] = None,
) -> None:
    """Validate the rules and publish them to the compacted rules topic.

    Running workers switch to the new set between two messages, without a restart.
    An invalid set is refused here and never reaches a worker. Every publish is kept
    as a numbered version (`escalator rules history`). With `--shadow` the set goes to
    the workers as a shadow instead (`rules shadow report`, `rules promote`).
    """
    from escalator.rules_history import publish_version, publisher_name
    from escalator.rules_publish import build_record
    from escalator.settings import KafkaSettings

    if shadow is not None:
        if path is not None:
            typer.echo("error: give either PATH or --shadow FILE|DIR, not both", err=True)
            raise typer.Exit(2)
        from escalator.commands.rules_shadow_cmd import publish_shadow

        publish_shadow(shadow, publisher_name(publisher))
        return
    if path is None:
        typer.echo("error: what to publish? PATH, or --shadow FILE|DIR|none", err=True)
        raise typer.Exit(2)
    try:
        record, ruleset = build_record(path)
    except RuleSetError as exc:
        for problem in exc.problems:
            typer.echo(str(problem), err=True)
        typer.echo("not published: the rule set is invalid", err=True)
        raise typer.Exit(1) from None
    except RuleFilesError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None
    kafka = KafkaSettings()
    record = record.model_copy(update={"published_by": publisher_name(publisher)})
    with kafka_trouble("not published"):
        version = publish_version(kafka, record, sorted(ruleset.queues), message=message)
    typer.echo(
        f"published rule set {record.version} to {kafka.topics.rules} as version {version.number}"
    )
