"""`escalator customers merge|split`: an operator's identity decisions, published with a reason.

Each command writes one record per decision to the compacted `customers.identity` topic;
every worker follows that topic, so messages processed afterwards resolve accordingly.
"""

from __future__ import annotations

import getpass
from datetime import UTC, datetime
from typing import Annotated

import typer

from schemas import IdentityKind, IdentityRecord

app = typer.Typer(help="Customer identity: merge and split customers.", no_args_is_help=True)

Reason = Annotated[str, typer.Option(help="Why (kept with the decision, for the audit).")]
By = Annotated[str | None, typer.Option(help="Who decides (default: the login name).")]


@app.command("merge")
def merge(
    customer: Annotated[str, typer.Argument(help="The customer to merge (e.g. H-1a2b…).")],
    into: Annotated[str, typer.Argument(help="The customer it becomes.")],
    reason: Reason,
    by: By = None,
) -> None:
    """Merge CUSTOMER into INTO: later messages of CUSTOMER's handles resolve to INTO."""
    if customer == into:
        typer.echo("a customer cannot be merged into itself", err=True)
        raise typer.Exit(2)
    _publish(
        [
            IdentityRecord(
                kind=IdentityKind.MERGE,
                customer_id=customer,
                merged_into=into,
                reason=reason,
                evidence="escalator customers merge",
                by=by or getpass.getuser(),
                at=datetime.now(UTC),
            )
        ]
    )
    typer.echo(f"merged {customer} into {into}")


@app.command("split")
def split(
    customer: Annotated[str, typer.Argument(help="The customer to split off.")],
    reason: Reason,
    handle: Annotated[
        list[str] | None,
        typer.Option(
            help="A handle to give back its own customer (email:…, phone:+…, twitter:@…); "
            "repeatable. Without it, the merge of CUSTOMER is undone."
        ),
    ] = None,
    by: By = None,
) -> None:
    """Undo a merge of CUSTOMER, or detach handles from it (each becomes its own customer)."""
    from streams.identity import implicit_customer

    now = datetime.now(UTC)
    who = by or getpass.getuser()
    records: list[IdentityRecord] = []
    if not handle:
        records.append(
            IdentityRecord(
                kind=IdentityKind.SPLIT,
                customer_id=customer,
                reason=reason,
                evidence="escalator customers split",
                by=who,
                at=now,
            )
        )
    for item in handle or []:
        if ":" not in item:
            typer.echo(f"{item!r} is not a handle: write kind:value, e.g. email:ana@example.com")
            raise typer.Exit(2)
        records.append(
            IdentityRecord(
                kind=IdentityKind.LINK,
                customer_id=implicit_customer(item),
                handle=item,
                reason=reason,
                evidence=f"escalator customers split {customer}",
                by=who,
                at=now,
            )
        )
    _publish(records)
    for record in records:
        target = f"{record.handle} → {record.customer_id}" if record.handle else customer
        typer.echo(f"split {target}")


def _publish(records: list[IdentityRecord]) -> None:
    """Write the records (acks=all) and wait; exit 1 if Kafka did not take them."""
    from escalator.settings import KafkaSettings
    from escalator.topic_admin import ensure_topics
    from kafkaio import PublishError, Record
    from kafkaio.blocking import produce_and_wait

    kafka = KafkaSettings()
    topic = kafka.topics.identity
    ensure_topics(kafka, {topic: {"cleanup.policy": "compact"}})
    batch = [Record(topic, record.key, record.model_dump_json().encode()) for record in records]
    try:
        produce_and_wait(kafka.librdkafka(), batch)
    except PublishError as error:
        typer.echo(f"not published: {error}", err=True)
        raise typer.Exit(1) from None
