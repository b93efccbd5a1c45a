"""`escalator rules`: check, explain, test and print the schema of rule files."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError

from escalator.rulefiles import RuleFilesError, read_referenced_file, read_rule_sources

app = typer.Typer(help="Write, check, test and publish escalation rules.", no_args_is_help=True)

PathArgument = Annotated[Path, typer.Argument(help="A rule file, or a folder of rule files.")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]


def _compile(path: Path) -> Any:
    """Compile the rules at `path`, or print every problem and exit 1."""
    import rules

    try:
        sources = read_rule_sources(path)
    except RuleFilesError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    try:
        return rules.compile_sources(sources, read_file=read_referenced_file)
    except rules.RuleSetError as exc:
        for problem in exc.problems:
            typer.echo(str(problem))
        raise typer.Exit(1) from None


@app.command("check")
def check(path: PathArgument) -> None:
    """Validate rule files: print every problem as FILE:LINE:COL: message; exit 1 if invalid."""
    ruleset = _compile(path)
    for warning in ruleset.warnings:
        typer.echo(str(warning))
    typer.echo(
        f"OK: {ruleset.route_count} routes, {len(ruleset.queues)} queues, "
        f"{len(ruleset.sla_policies)} SLA policies, {len(ruleset.calendars)} calendars, "
        f"{len(ruleset.escalation_policies)} escalations ({ruleset.version})"
    )


@app.command("explain")
def explain(
    path: PathArgument,
    message: Annotated[Path, typer.Option("--message", help="The message, as inbound JSON.")],
    case: Annotated[
        Path | None, typer.Option("--case", help="Case facts as JSON (see docs/rules.md).")
    ] = None,
    at: Annotated[
        str | None, typer.Option("--at", help="Arrival time, RFC 3339 (default: sent_at).")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Show the decision for one message and why: each route tried and the deciding condition."""
    from rules._case_input import case_facts_from
    from schemas import InboundMessage

    ruleset = _compile(path)
    try:
        inbound = InboundMessage.model_validate(_read_json(message))
        facts = case_facts_from(_read_json(case), inbound.channel) if case else None
    except ValidationError as exc:
        typer.echo(f"error: invalid input:\n{exc}", err=True)
        raise typer.Exit(2) from None
    arrival = _parse_time(at) if at else inbound.sent_at
    explanation = ruleset.explain(inbound, facts, arrival)
    decision = explanation.decision.to_json()
    if as_json:
        typer.echo(json.dumps(decision, sort_keys=False))
        return
    typer.echo(f"rules {ruleset.version}, message {inbound.message_key} at {arrival.isoformat()}")
    typer.echo("routes tried:")
    for line in explanation.lines():
        typer.echo(f"  {line}")
    typer.echo("decision:")
    for key in ("queue", "priority", "tags", "matched", "sla_policy", "calendar"):
        typer.echo(f"  {key}: {_show(decision[key])}")
    for clock, due in decision["sla"].items():
        typer.echo(f"  sla.{clock}: due {due['due_at']}")
    for step in decision["escalations"]:
        typer.echo(f"  escalation: {json.dumps(step)}")
    if decision.get("acknowledgement"):
        typer.echo(f"  acknowledgement: {decision['acknowledgement']}")


@app.command("test")
def test(
    path: PathArgument,
    tests: Annotated[list[Path], typer.Argument(help="Rule test files (YAML).")],
    as_json: JsonOption = False,
) -> None:
    """Run rule unit tests (timelines on a moving clock too); exit 1 on a failure."""
    import rules
    from escalator.commands.rule_test_report import outcome_json, outcome_lines, run_tests
    from rules._rule_tests import load_rule_tests

    ruleset = _compile(path)
    report: list[dict[str, Any]] = []
    failed = 0
    for test_file in tests:
        try:
            prepared = load_rule_tests(str(test_file), test_file.read_text(encoding="utf-8"))
        except OSError as exc:
            typer.echo(f"error: cannot read {test_file}: {exc}", err=True)
            raise typer.Exit(2) from None
        except rules.RuleSetError as exc:
            for problem in exc.problems:
                typer.echo(str(problem))
            raise typer.Exit(2) from None
        for result in run_tests(ruleset, prepared):
            failed += not result.passed
            report.append(outcome_json(result))
            if not as_json:
                for line in outcome_lines(result):
                    typer.echo(line)
    summary = {"rules_version": ruleset.version, "passed": len(report) - failed, "failed": failed}
    if as_json:
        typer.echo(json.dumps({**summary, "tests": report}))
    else:
        typer.echo(f"{len(report)} tests: {summary['passed']} passed, {failed} failed")
    if failed:
        raise typer.Exit(1)


@app.command("schema")
def schema() -> None:
    """Print the JSON Schema of rule files (for yaml-language-server and other editors)."""
    from rules import rule_file_json_schema

    typer.echo(json.dumps(rule_file_json_schema(), indent=2))


def _read_json(path: Path | None) -> Any:
    assert path is not None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        typer.echo(f"error: cannot read {path}: {exc}", err=True)
        raise typer.Exit(2) from None


def _parse_time(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        typer.echo(f"error: --at needs an RFC 3339 time with an offset, not {text!r}", err=True)
        raise typer.Exit(2)
    return moment


def _show(value: Any) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(str(v) for v in value) + "]"
    return "-" if value is None else str(value)
