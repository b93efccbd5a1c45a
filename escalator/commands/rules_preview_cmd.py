"""`escalator rules preview`: the open cases a candidate rule set would decide differently."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer


def preview(
    candidate: Annotated[Path, typer.Argument(help="The candidate rule file or folder.")],
    baseline: Annotated[
        Path | None,
        typer.Option("--baseline", help="Compare with these files, not the published set."),
    ] = None,
    limit: Annotated[
        int, typer.Option("--limit", help="Cases listed at most (human output).")
    ] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")] = False,
) -> None:
    """List open cases whose queue, priority, SLA policy or due times the candidate changes."""
    from escalator.commands.rules import _compile
    from escalator.rules_preview import preview as run_preview
    from escalator.settings import Settings
    from queues.engine import make_engine, make_session_factory

    proposed = _compile(candidate)
    active = _compile(baseline) if baseline is not None else _published()
    engine = make_engine(Settings().effective_database_url)
    try:
        with make_session_factory(engine)() as session:
            looked_at, changed = run_preview(session, active, proposed)
    finally:
        engine.dispose()
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "active": active.version,
                    "candidate": proposed.version,
                    "cases": looked_at,
                    "changed": [_case_json(case) for case in changed],
                }
            )
        )
        return
    typer.echo(
        f"{looked_at} open cases; {len(changed)} would change with {proposed.version} "
        f"(active {active.version})"
    )
    for case in changed[:limit]:
        fields = ", ".join(f"{c.field} {_show(c.before)} → {_show(c.after)}" for c in case.changes)
        typer.echo(f"  {case.case_id} (in {case.current_queue or '-'}): {fields}")
        typer.echo(f"      {case.reason}")
    if len(changed) > limit:
        typer.echo(f"  ... and {len(changed) - limit} more (--limit, --json)")


def _published() -> Any:
    from escalator.settings import KafkaSettings
    from streams.rules_watch import RulesWatcher

    kafka = KafkaSettings()
    watcher = RulesWatcher(kafka.librdkafka(), kafka.topics.rules, lambda _ruleset: None)
    try:
        active = watcher.load_current()
    finally:
        watcher.stop()
    if active is None:
        typer.echo("error: no rule set is published yet; compare with --baseline FILE", err=True)
        raise typer.Exit(2)
    return active


def _case_json(case: Any) -> dict[str, Any]:
    return {
        "case_id": case.case_id,
        "current_queue": case.current_queue,
        "reason": case.reason,
        "changes": [{"field": c.field, "before": c.before, "after": c.after} for c in case.changes],
    }


def _show(value: Any) -> str:
    return "-" if value is None else str(value)
