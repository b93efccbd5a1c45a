"""`escalator rules publish --shadow`, `rules shadow report` and `rules promote`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from escalator.commands.rules_publish_cmd import MessageOption, PublisherOption, kafka_trouble

app = typer.Typer(help="The shadow rule set: evaluated beside the active one, never acted on.")


def publish_shadow(target: str, publisher: str) -> None:
    """Publish FILE|DIR as the shadow set, or stop shadowing (`none`)."""
    from escalator.rulefiles import RuleFilesError
    from escalator.rules_publish import build_record
    from escalator.rules_shadow import publish_shadow as publish
    from escalator.settings import KafkaSettings
    from rules import RuleSetError

    kafka = KafkaSettings()
    if target == "none":
        with kafka_trouble("shadow not stopped"):
            publish(kafka, None, publisher)
        typer.echo(f"shadowing stopped ({kafka.topics.rules_candidate})")
        return
    try:
        record, _ruleset = build_record(Path(target))
    except RuleSetError as exc:
        for problem in exc.problems:
            typer.echo(str(problem), err=True)
        typer.echo("not published: the rule set is invalid", err=True)
        raise typer.Exit(1) from None
    except RuleFilesError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None
    record = record.model_copy(update={"published_by": publisher})
    with kafka_trouble("shadow not published"):
        publish(kafka, record, publisher)
    typer.echo(
        f"published rule set {record.version} as the shadow set to "
        f"{kafka.topics.rules_candidate}; disagreements go to {kafka.topics.rules_shadow}"
    )


@app.command("report")
def show_report(
    every: Annotated[
        bool, typer.Option("--all", help="Every shadow set's disagreements, not the current's.")
    ] = False,
    top: Annotated[int, typer.Option("--top", help="Changes and examples listed at most.")] = 10,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Summarise where the shadow set decided otherwise than the active one, on live traffic."""
    from escalator.rules_shadow import current_shadow, report
    from escalator.settings import KafkaSettings

    kafka = KafkaSettings()
    with kafka_trouble("cannot read the shadow set"):
        shadow = current_shadow(kafka)
    version = None if every or shadow is None or shadow.record is None else shadow.record.version
    with kafka_trouble("cannot read the disagreements"):
        summary = report(kafka, version, examples=top)
    data = summary.to_json(top)
    data["active_shadow"] = shadow.record.version if shadow and shadow.record else None
    if as_json:
        typer.echo(json.dumps(data))
        return
    for line in _lines(data):
        typer.echo(line)


def promote(publisher: PublisherOption = None, message: MessageOption = None) -> None:
    """Make the shadow set the active one (a new version in the history), then stop shadowing."""
    from escalator.rules_history import publisher_name
    from escalator.rules_shadow import NoShadowError
    from escalator.rules_shadow import promote as run_promote
    from escalator.settings import KafkaSettings
    from rules import RuleSetError

    kafka = KafkaSettings()
    try:
        with kafka_trouble("not promoted"):
            version = run_promote(kafka, publisher_name(publisher), message)
    except NoShadowError as exc:
        typer.echo(f"error: {exc.args[0]}", err=True)
        raise typer.Exit(2) from None
    except RuleSetError as exc:
        for problem in exc.problems:
            typer.echo(str(problem), err=True)
        typer.echo("not promoted: the shadow set no longer compiles", err=True)
        raise typer.Exit(1) from None
    typer.echo(
        f"promoted shadow rule set {version.record.version} to {kafka.topics.rules} as "
        f"version {version.number}; shadowing stopped"
    )


def _lines(data: dict[str, Any]) -> list[str]:
    shadow = data["active_shadow"] or "none"
    if data["shadow"] is None and data["active_shadow"] is None:
        head = "no shadow rule set now; disagreements of every earlier one:"
    else:
        head = f"shadow rule set {data['shadow'] or shadow} (every shadow set: --all):"
    lines = [
        head,
        f"  {data['disagreements']:,} messages decided differently, in {data['cases']:,} cases"
        + (f", {data['first_at']} to {data['last_at']}" if data["first_at"] else ""),
    ]
    if data["by_field"]:
        lines.append(
            "  by field: " + ", ".join(f"{name} {n:,}" for name, n in data["by_field"].items())
        )
    if data["changes"]:
        lines.append("  most frequent changes (active → shadow):")
        lines.extend(
            f"    {c['field']}: {c['active']} → {c['shadow']}  ({c['count']:,})"
            for c in data["changes"]
        )
    if data["examples"]:
        lines.append("  examples:")
        for example in data["examples"]:
            fields = ", ".join(example["fields"])
            lines.append(
                f"    {example['case_id']} {example['message_key']} at {example['at']}: {fields}"
            )
    return lines
