"""The `escalator` command: one sub-command group per concern, wired here and nowhere else."""

from __future__ import annotations

import typer

from escalator.commands import (
    agents,
    broker,
    case_actions,
    cases,
    connect,
    customers,
    db,
    demo,
    desk,
    ingress,
    kafka_cmd,
    projection,
    rules,
    rules_backtest_cmd,
    rules_history_cmd,
    rules_preview_cmd,
    rules_publish_cmd,
    rules_shadow_cmd,
    schemas_cmd,
    worker,
)

app = typer.Typer(
    name="escalator",
    help="Kafka-native escalation pipeline: no customer message sits unanswered.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
rules.app.command("publish")(rules_publish_cmd.publish)
rules.app.command("history")(rules_history_cmd.show_history)
rules.app.command("diff")(rules_history_cmd.show_diff)
rules.app.command("rollback")(rules_history_cmd.rollback)
rules.app.command("preview")(rules_preview_cmd.preview)
rules.app.command("backtest")(rules_backtest_cmd.backtest)
rules.app.command("promote")(rules_shadow_cmd.promote)
rules.app.add_typer(rules_shadow_cmd.app, name="shadow")
app.add_typer(rules.app, name="rules")
app.add_typer(schemas_cmd.app, name="schemas")
app.add_typer(connect.app, name="connect")
cases.app.command("act")(case_actions.act)
app.add_typer(cases.app, name="cases")
app.add_typer(customers.app, name="customers")
app.add_typer(db.app, name="db")
app.command("worker")(worker.run_worker)
app.command("broker")(broker.run_broker)
app.command("demo")(demo.run_demo)
app.command("projection")(projection.run_projection)
app.command("desk")(desk.run_desk)
app.add_typer(agents.app, name="agents")
app.add_typer(kafka_cmd.app, name="kafka")
app.add_typer(ingress.app, name="ingress")


def main() -> None:
    """Entry point of the `escalator` console script."""
    app()
