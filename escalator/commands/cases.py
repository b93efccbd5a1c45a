"""`escalator cases`: look at cases in the store."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from escalator.settings import Settings
from queues import CaseDetail, CaseStore, CaseSummary, StoreNotInitialisedError
from queues.store import DEFAULT_LIST_LIMIT, rfc3339

app = typer.Typer(help="Cases in the case store.", no_args_is_help=True)


def _open_store() -> CaseStore:
    try:
        return CaseStore.open(Settings().effective_database_url)
    except StoreNotInitialisedError as error:
        Console(stderr=True, soft_wrap=True).print(f"[red]{error}[/red]")
        raise typer.Exit(code=1) from error


def _print_json(value: Any) -> None:
    typer.echo(json.dumps(value, indent=2, ensure_ascii=False))


@app.command("list")
def list_cases(
    queue: Annotated[str | None, typer.Option(help="Only cases routed to this queue.")] = None,
    status: Annotated[str | None, typer.Option(help="Only cases with this status.")] = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many cases.")] = (
        DEFAULT_LIST_LIMIT
    ),
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON array.")] = False,
) -> None:
    """List cases, most urgent first."""
    store = _open_store()
    try:
        cases = store.list_cases(queue=queue, status=status, limit=limit)
    finally:
        store.close()
    if as_json:
        _print_json([case.to_json() for case in cases])
        return
    Console().print(_cases_table(cases))


def _cases_table(cases: list[CaseSummary]) -> Table:
    table = Table(title=f"{len(cases)} cases")
    # Ids and times must stay whole and copyable; the other columns wrap in narrow terminals.
    table.add_column("case", no_wrap=True, min_width=12)
    for column in ("queue", "priority", "status", "customer", "channels", "tags"):
        table.add_column(column)
    table.add_column("msgs", justify="right")
    table.add_column("opened (UTC)", no_wrap=True, min_width=16)
    for case in cases:
        table.add_row(
            case.case_id,
            case.queue or "-",
            case.priority or "-",
            case.status,
            case.customer_id,
            ", ".join(case.channels),
            ", ".join(case.tags),
            str(case.message_count),
            case.opened_at.strftime("%Y-%m-%d %H:%M") if case.opened_at else "-",
        )
    return table


@app.command("show")
def show_case(
    case_id: Annotated[str, typer.Argument(help="The case id, e.g. C-ABCDEFGHIJ.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Show one case with its messages and its event history."""
    store = _open_store()
    try:
        case = store.get_case(case_id)
    finally:
        store.close()
    if case is None:
        Console(stderr=True, soft_wrap=True).print(f"[red]no case {case_id}[/red]")
        raise typer.Exit(code=1)
    if as_json:
        _print_json(case.to_json())
        return
    _print_case(Console(), case)


def _print_case(console: Console, case: CaseDetail) -> None:
    summary = case.summary
    console.print(f"[bold]{summary.case_id}[/bold]  customer {summary.customer_id}")
    console.print(
        f"queue {summary.queue or '-'}  priority {summary.priority or '-'}  "
        f"status {summary.status}  tags {', '.join(summary.tags) or '-'}"
    )
    console.print(f"matched {', '.join(case.matched) or '-'}  rules {case.rules_version or '-'}")
    for clock, view in case.sla.items():
        console.print(f"sla {clock}: due {view.get('due_at') or '-'} ({view.get('state')})")
    messages = Table(title="messages")
    for column in ("sent (UTC)", "channel", "direction", "sender", "text"):
        messages.add_column(column)
    for message in case.messages:
        messages.add_row(
            rfc3339(message.sent_at) or "",
            message.channel,
            message.direction,
            message.sender or "-",
            message.text,
        )
    console.print(messages)
    events = Table(title="events")
    for column in ("at (UTC)", "type", "reason"):
        events.add_column(column)
    for event in case.events:
        events.add_row(rfc3339(event.at) or "", event.type, event.reason)
    console.print(events)
