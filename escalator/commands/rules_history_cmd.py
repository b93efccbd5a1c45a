"""`escalator rules history | diff | rollback`: the published versions of the rule set."""

from __future__ import annotations

import json
from datetime import UTC
from typing import Annotated, Any

import typer

from escalator.commands.rules_publish_cmd import MessageOption, PublisherOption, kafka_trouble

VersionArgument = Annotated[int, typer.Argument(help="A version number from `rules history`.")]


def show_history(
    as_json: Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")] = False,
) -> None:
    """List every published version: number, when, who, content hash, message; newest last."""
    from escalator.rules_history import history
    from escalator.settings import KafkaSettings

    with kafka_trouble("cannot read the rule set history"):
        versions = history(KafkaSettings())
    rows = [_row(version) for version in versions]
    if as_json:
        typer.echo(json.dumps({"versions": rows}))
        return
    if not rows:
        typer.echo("no rule set has been published yet")
        return
    active = rows[-1]["version"]
    for row in rows:
        note = row["message"] or ""
        if row["rolled_back_from"] is not None:
            note = f"rollback to v{row['rolled_back_from']}" + (f": {note}" if note else "")
        marker = "*" if row["version"] == active else " "
        typer.echo(
            f"{marker} v{row['version']:<3} {row['published_at']}  "
            f"{row['published_by'] or '-':<12} {row['hash']}  {note}".rstrip()
        )


def show_diff(old: VersionArgument, new: VersionArgument) -> None:
    """Show what changed between two versions, as a unified diff of their rule files."""
    from escalator.rules_history import UnknownVersionError, diff, find, history
    from escalator.settings import KafkaSettings

    with kafka_trouble("cannot read the rule set history"):
        versions = history(KafkaSettings())
    try:
        before, after = find(versions, old), find(versions, new)
    except UnknownVersionError as exc:
        typer.echo(f"error: {exc.args[0]}", err=True)
        raise typer.Exit(2) from None
    text = diff(before, after)
    if not text:
        typer.echo(f"v{old} and v{new} have the same files ({after.record.version})")
        return
    typer.echo(text, nl=False)


def rollback(
    version: VersionArgument,
    publisher: PublisherOption = None,
    message: MessageOption = None,
) -> None:
    """Publish an earlier version again: validated, atomic and recorded as a new version."""
    from escalator.rules_history import (
        UnknownVersionError,
        find,
        history,
        publish_version,
        publisher_name,
        rollback_record,
    )
    from escalator.settings import KafkaSettings
    from rules import RuleSetError

    kafka = KafkaSettings()
    with kafka_trouble("cannot read the rule set history"):
        versions = history(kafka)
    try:
        earlier = find(versions, version)
        record, ruleset = rollback_record(earlier, publisher_name(publisher))
    except UnknownVersionError as exc:
        typer.echo(f"error: {exc.args[0]}", err=True)
        raise typer.Exit(2) from None
    except (RuleSetError, OSError) as exc:
        for problem in getattr(exc, "problems", [exc]):
            typer.echo(str(problem), err=True)
        typer.echo(f"not rolled back: version {version} no longer compiles", err=True)
        raise typer.Exit(1) from None
    with kafka_trouble("not rolled back"):
        published = publish_version(
            kafka, record, sorted(ruleset.queues), message=message, rolled_back_from=version
        )
    typer.echo(
        f"rolled back to version {version} ({record.version}), "
        f"published as version {published.number}"
    )


def _row(version: Any) -> dict[str, Any]:
    record = version.record
    return {
        "version": version.number,
        "hash": record.version,
        "published_at": record.published_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "published_by": record.published_by,
        "message": version.entry.message,
        "rolled_back_from": version.entry.rolled_back_from,
        "files": sorted(record.sources),
    }
