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
    path: Annotated[Path, typer.Argument(help="Rule file or folder of rule files.")],
    publisher: PublisherOption = None,
    message: MessageOption = None,
) -> None:
    """Validate the rules and publish them to the compacted rules topic.

    Running workers switch to the new set between two messages, without a restart.
    An invalid set is refused here and never reaches a worker. Every publish is kept
    as a numbered version (`escalator rules history`).
    """
    from escalator.rules_history import publish_version, publisher_name
    from escalator.rules_publish import build_record
    from escalator.settings import KafkaSettings

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
