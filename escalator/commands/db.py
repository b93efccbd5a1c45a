"""`escalator db`: migrations and rebuilds of the case store."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from escalator.settings import KafkaSettings, Settings
from metricsio.gc_tuning import tune_collector
from queues import StoreNotEmptyError, rebuild, upgrade, upgrade_sql
from queues.effort import EffortPolicy
from queues.store import redacted_url

app = typer.Typer(help="The case store: migrate, rebuild.", no_args_is_help=True)


@app.command("upgrade")
def upgrade_command(
    revision: Annotated[str, typer.Option(help="Migration to upgrade to.")] = "head",
    sql: Annotated[
        bool, typer.Option("--sql", help="Print the SQL for an empty database; run nothing.")
    ] = False,
) -> None:
    """Create or upgrade the case store schema (ESCALATOR_DATABASE_URL, default var/)."""
    url = Settings().effective_database_url
    if sql:
        typer.echo(upgrade_sql(url, revision), nl=False)
        return
    upgrade(url, revision)
    typer.echo(f"case store at {redacted_url(url)} upgraded to {revision}")


@app.command("rebuild")
def rebuild_command(
    force: Annotated[
        bool, typer.Option("--force", help="Replace a store that already holds cases.")
    ] = False,
    timeout: Annotated[
        float, typer.Option(help="Seconds to wait for the replay to reach the end.")
    ] = 600.0,
) -> None:
    """Rebuild the case store by replaying the case events (and agent presence) topics.

    Stop `escalator projection` first. The replay stops at the end offsets seen at start.
    """
    settings = Settings()
    kafka = KafkaSettings()
    url = settings.effective_database_url
    console = Console(stderr=True, soft_wrap=True)
    tune_collector()
    try:
        report = rebuild(
            database_url=url,
            kafka_config=kafka.librdkafka(),
            topic=kafka.topics.case_events,
            presence_topic=kafka.topics.agent_presence,
            effort=EffortPolicy(settings.repeat_contact_window, settings.effort_settle_grace),
            force=force,
            timeout_seconds=timeout,
        )
    except StoreNotEmptyError as error:
        console.print(f"[red]refused:[/red] {error}")
        raise typer.Exit(code=1) from error
    except TimeoutError as error:
        console.print(f"[red]rebuild incomplete:[/red] {error}")
        raise typer.Exit(code=1) from error
    outcomes = ", ".join(
        f"{outcome.value} {count}" for outcome, count in sorted(report.outcomes.outcomes.items())
    )
    typer.echo(
        f"rebuilt {redacted_url(url)} from {kafka.topics.case_events}: "
        f"{report.records} records ({outcomes or 'none'}), {report.cases} cases"
    )
