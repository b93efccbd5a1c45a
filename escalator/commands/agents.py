"""`escalator agents`: add agents (their token is printed once), list them, configure queues."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from escalator.settings import Settings
from queues.desk.directory import Mode, Role, Strategy

if TYPE_CHECKING:
    from queues.desk import Directory

app = typer.Typer(help="Desk agents and queue settings.", no_args_is_help=True)


def _directory() -> Directory:
    from queues import CaseStore, StoreNotInitialisedError, make_session_factory
    from queues.desk import Directory

    try:
        store = CaseStore.open(Settings().effective_database_url)
    except StoreNotInitialisedError as error:
        Console(stderr=True, soft_wrap=True).print(f"[red]{error}[/red]")
        raise typer.Exit(code=1) from error
    return Directory(make_session_factory(store.engine))


def _fail(message: str) -> typer.Exit:
    Console(stderr=True, soft_wrap=True).print(f"[red]{message}[/red]")
    return typer.Exit(code=2)


@app.command("add")
def add(
    name: Annotated[str, typer.Argument(help="Login name: lowercase letters, digits, . _ -")],
    skills: Annotated[str, typer.Option(help="Comma-separated skills, e.g. billing,german.")] = "",
    queues: Annotated[str, typer.Option(help="Comma-separated queues the agent works.")] = "",
    role: Annotated[Role, typer.Option(help="What the agent may do.")] = Role.AGENT,
    capacity: Annotated[
        str, typer.Option(help="Open cases per channel, e.g. chat=3,email=10,*=5 (or one number).")
    ] = "",
) -> None:
    """Create an agent and print their API token. It is shown this once and stored hashed."""
    from queues.desk import DirectoryError
    from queues.desk.directory import parse_capacity, split_list

    try:
        agent, token = _directory().add_agent(
            name,
            role=role,
            skills=split_list(skills),
            queues=split_list(queues),
            capacity=parse_capacity(capacity) or None,
        )
    except (DirectoryError, ValueError) as error:
        raise _fail(str(error)) from error
    where = ", ".join(sorted(agent.queues)) or "no queues"
    Console(stderr=True, soft_wrap=True).print(
        f"agent {agent.name} ({agent.role.value}) in {where}; token (shown once, store it now):"
    )
    typer.echo(token)


@app.command("token")
def token(name: Annotated[str, typer.Argument(help="The agent.")]) -> None:
    """Replace an agent's token and print the new one (the old one stops working)."""
    from queues.desk import DirectoryError

    try:
        typer.echo(_directory().rotate_token(name))
    except DirectoryError as error:
        raise _fail(str(error)) from error


@app.command("list")
def list_agents(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Every agent with role, queues, skills, capacity and presence."""
    agents = _directory().agents()
    if as_json:
        typer.echo(json.dumps([agent.to_json() for agent in agents], indent=2))
        return
    table = Table("name", "role", "queues", "skills", "capacity", "presence")
    for agent in agents:
        table.add_row(
            agent.name,
            agent.role.value,
            ", ".join(sorted(agent.queues)),
            ", ".join(sorted(agent.skills)),
            ", ".join(f"{k}={v}" for k, v in agent.capacity.items()),
            agent.presence.value,
        )
    Console(soft_wrap=True).print(table)


@app.command("queues")
def set_queues(
    name: Annotated[str, typer.Argument(help="The agent.")],
    queues: Annotated[str, typer.Argument(help="Comma-separated queues (replaces the list).")],
) -> None:
    """Set the queues an agent works."""
    from queues.desk import DirectoryError
    from queues.desk.directory import split_list

    try:
        agent = _directory().set_membership(name, split_list(queues))
    except DirectoryError as error:
        raise _fail(str(error)) from error
    typer.echo(f"{agent.name}: {', '.join(sorted(agent.queues)) or 'no queues'}")


@app.command("queue")
def configure_queue(
    queue: Annotated[str, typer.Argument(help="The queue (created if new).")],
    strategy: Annotated[Strategy | None, typer.Option(help="How an agent is picked.")] = None,
    mode: Annotated[Mode | None, typer.Option(help="push (Escalator assigns) or pull.")] = None,
    skills: Annotated[
        str | None, typer.Option(help="Comma-separated skills every agent needs.")
    ] = None,
    accept_timeout: Annotated[
        int | None, typer.Option(help="Seconds to accept a pushed case before it goes back.")
    ] = None,
) -> None:
    """Show or change how a queue hands out its cases."""
    from queues.desk import DirectoryError
    from queues.desk.directory import split_list

    try:
        settings = _directory().configure_queue(
            queue,
            strategy=strategy,
            mode=mode,
            skills=split_list(skills) if skills is not None else None,
            accept_timeout_seconds=accept_timeout,
        )
    except (DirectoryError, ValueError) as error:
        raise _fail(str(error)) from error
    typer.echo(json.dumps(settings.to_json()))
