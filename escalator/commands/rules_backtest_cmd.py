"""`escalator rules backtest`: replay recorded history under a candidate and the baseline."""

from __future__ import annotations

import json
import sys
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer


def backtest(
    candidate: Annotated[Path, typer.Argument(help="The candidate rule file or folder.")],
    start: Annotated[
        str | None,
        typer.Option("--from", help="Replay history from this time (RFC 3339; default: all)."),
    ] = None,
    end: Annotated[
        str | None,
        typer.Option(
            "--to", help="Up to this time, clocks included (default: now, or the file's end)."
        ),
    ] = None,
    messages: Annotated[
        Path | None,
        typer.Option("--messages", help="JSONL of inbound messages, instead of Kafka's history."),
    ] = None,
    actions: Annotated[
        Path | None,
        typer.Option("--actions", help="JSONL of agent actions to replay with --messages."),
    ] = None,
    baseline: Annotated[
        Path | None,
        typer.Option("--baseline", help="Compare with these files, not the published set."),
    ] = None,
    top: Annotated[int, typer.Option("--top", help="Cases listed at most (human output).")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    progress: Annotated[
        bool | None,
        typer.Option("--progress/--no-progress", help="Progress on stderr (default: on a TTY)."),
    ] = None,
) -> None:
    """Replay history through the candidate and the baseline; report what would change.

    Both sets run through the worker's own stages on simulated time (deterministic):
    per case, the queue, priority, tags, SLA policy, due times and every warning, breach
    and escalation gained or lost; in total, queue changes, breaches per queue and the
    first-response attainment before and after.
    """
    from escalator.commands.rules import _compile
    from escalator.commands.rules_preview_cmd import _published
    from escalator.rules_backtest import Backtest, run_backtest

    if actions is not None and messages is None:
        typer.echo("error: --actions goes with --messages", err=True)
        raise typer.Exit(2)
    proposed = _compile(candidate)
    active = _compile(baseline) if baseline is not None else _published()
    job = Backtest(
        baseline=active,
        candidate=proposed,
        messages=messages,
        actions=actions,
        start=_moment(start, "--from"),
        until=_moment(end, "--to"),
    )
    _worker_settings(job)
    show = sys.stderr.isatty() if progress is None else progress
    history = None if messages is not None else _kafka_history(job, show)
    report = run_backtest(job, history, progress=_progress if show else None)
    if show:
        typer.echo("", err=True)
    if as_json:
        typer.echo(json.dumps(report))
        return
    for line in summary(report, top):
        typer.echo(line)


def summary(report: dict[str, Any], top: int) -> list[str]:
    """The human report: what was replayed, the totals, then the cases that changed most."""
    rules, history = report["rules"], report["history"]
    lines = [
        f"backtest of {rules['candidate']} against {rules['baseline']}, "
        f"{report['range']['from'] or '-'} to {report['range']['to']}",
        f"replayed {history['messages']:,} messages and {history['actions']:,} agent actions "
        f"into {report['cases']:,} cases; {report['cases_changed']:,} cases differ",
    ]
    if history["invalid"]:
        lines.append(
            f"left out {history['invalid']:,} invalid inputs (first: {history['first_invalid']})"
        )
    moves = report["queue_changes"]
    lines.append(f"\ncases changing queue: {moves['cases']:,}")
    lines.extend(
        f"  {move['from']} → {move['to']}: {move['cases']:,}" for move in moves["moves"][:top]
    )
    breaches = report["breaches"]
    lines.append(f"\nbreaches: {breaches['before']:,} → {breaches['after']:,}")
    lines.extend(
        f"  {queue:<20} {counts['before']:>6,} → {counts['after']:,}"
        for queue, counts in breaches["by_queue"].items()
    )
    for name in ("warnings", "escalations"):
        lines.append(f"{name}: {report[name]['before']:,} → {report[name]['after']:,}")
    from schemas import ClockName

    first = report[ClockName.FIRST_RESPONSE.value]
    lines.append(f"first-response attainment: {_share(first['before'])} → {_share(first['after'])}")
    by_case: dict[str, list[dict[str, Any]]] = {}
    for change in report["changed"]:
        by_case.setdefault(change["case_id"], []).append(change)
    if by_case:
        lines.append(f"\ntop differences ({min(top, len(by_case))} of {len(by_case):,} cases):")
        ranked = sorted(by_case.items(), key=lambda kv: (-_weight(kv[1]), kv[0]))
        for case_id, changes in ranked[:top]:
            lines.append(f"  {case_id}")
            lines.extend(
                f"      {c['field']}: {_show(c['before'])} → {_show(c['after'])}" for c in changes
            )
    kinds = Counter(c["field"].split(" ", 1)[0] for c in report["changed"])
    if kinds:
        lines.append("\nfields changed: " + ", ".join(f"{k} {n:,}" for k, n in kinds.most_common()))
    return lines


def _weight(changes: list[dict[str, Any]]) -> int:
    """Queue moves and breaches first: what an ops lead most needs to see."""
    score = 0
    for change in changes:
        field = change["field"]
        score += 10 if field in ("queue", "sla.breached") or field.startswith("sla.breached") else 1
    return score


def _share(counts: dict[str, Any]) -> str:
    if counts["attainment"] is None:
        return "-"
    decided = counts["met"] + counts["breached"]
    return f"{counts['attainment'] * 100:.1f}% ({counts['met']:,} of {decided:,})"


def _show(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, list):
        return "[" + ", ".join(map(str, value)) + "]"
    return str(value)


def _moment(text: str | None, option: str) -> datetime | None:
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        typer.echo(f"error: {option} {text!r} is not an RFC 3339 time", err=True)
        raise typer.Exit(2) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _worker_settings(job: Any) -> None:
    """Thread and resolve customers with the worker's settings (windows, identity)."""
    from functools import partial

    from escalator.settings import Settings
    from streams.identity import IdentityDirectory
    from streams.threader import ThreadingPolicy

    settings = Settings()
    job.threading = ThreadingPolicy(
        thread_window=settings.thread_window,
        reopen_window=settings.reopen_window,
        history_window=settings.history_window,
    )
    job.identity = partial(
        IdentityDirectory,
        settings.phone_region,
        worker=settings.worker_id,
        verified_channels=settings.verified_channel_set,
        mail_links_require_dmarc=settings.mail_links_require_dmarc,
    )


def _kafka_history(job: Any, show: bool) -> Any:
    """Messages and agent actions recorded in Kafka within the job's range."""
    from escalator.commands.rules_publish_cmd import kafka_trouble
    from escalator.rules_backtest import from_records
    from escalator.settings import KafkaSettings
    from kafkaio.time_range import RangeReadError, read_range

    kafka = KafkaSettings()
    topics = kafka.topics
    job.until = job.until or datetime.now(UTC)

    def reading(count: int) -> None:
        typer.echo(f"\r  read {count:,} records from Kafka", err=True, nl=False)

    try:
        with kafka_trouble("cannot read the history"):
            records = read_range(
                kafka.librdkafka(),
                [topics.inbound, topics.agent_actions],
                job.start,
                job.until,
                progress=reading if show else None,
            )
            return from_records(records, topics.inbound)
    except RangeReadError as exc:
        typer.echo(f"error: cannot read the history: {exc}", err=True)
        raise typer.Exit(1) from None


def _progress(done: int, total: int) -> None:
    share = done / total * 100 if total else 100.0
    typer.echo(f"\r  replayed {done:,} of {total:,} records ({share:.0f}%)", err=True, nl=False)
