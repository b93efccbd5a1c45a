"""`escalator rules publish`: validate rules and hand them to every running worker."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from escalator.rulefiles import RuleFilesError
from rules import RuleSetError


def publish(
    path: Annotated[Path, typer.Argument(help="Rule file or folder of rule files.")],
) -> None:
    """Validate the rules and publish them to the compacted rules topic.

    Running workers switch to the new set between two messages, without a restart.
    An invalid set is refused here and never reaches a worker.
    """
    from escalator.rules_publish import build_record
    from escalator.rules_publish import publish as publish_record
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
    publish_record(kafka, record, sorted(ruleset.queues))
    typer.echo(f"published rule set {record.version} to {kafka.topics.rules}")
