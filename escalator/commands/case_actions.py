"""`escalator cases act`: publish an agent action (until the desk API exists, and for scripts)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated

import typer

from schemas import AgentActionType, CaseStatus, Priority

if TYPE_CHECKING:
    from pydantic_core import ErrorDetails


def act(
    case_id: Annotated[str, typer.Argument(help="The case, e.g. C-1A2B3C4D5E.")],
    action: Annotated[AgentActionType, typer.Argument(help="What the agent does.")],
    agent: Annotated[str, typer.Option(help="The acting agent's id.")] = "cli",
    text: Annotated[str | None, typer.Option(help="Reply or note text.")] = None,
    status: Annotated[
        CaseStatus | None, typer.Option(help="New status (waiting_on_customer pauses SLAs).")
    ] = None,
    queue: Annotated[str | None, typer.Option(help="Transfer to this queue.")] = None,
    to_agent: Annotated[str | None, typer.Option(help="Transfer to this agent.")] = None,
    priority: Annotated[
        Priority | None, typer.Option(help="Escalate to this priority (never lowers it).")
    ] = None,
    reason: Annotated[
        str | None, typer.Option(help="Why, in words (required to escalate; an acknowledge note).")
    ] = None,
    action_id: Annotated[
        str | None, typer.Option(help="Idempotency key (default: a new UUID).")
    ] = None,
) -> None:
    """Publish one action on the agent actions topic, keyed by case id (acks=all)."""
    from pydantic import ValidationError

    from escalator.settings import KafkaSettings
    from kafkaio import PublishError, Record
    from kafkaio.blocking import BlockingProducer
    from schemas import AgentAction

    try:
        record = AgentAction(
            action_id=action_id or str(uuid.uuid4()),
            case_id=case_id,
            agent_id=agent,
            type=action,
            at=datetime.now(UTC),
            text=text,
            status=status,
            queue=queue,
            to_agent=to_agent,
            priority=priority,
            reason=reason,
        )
    except ValidationError as exc:
        for error in exc.errors(include_url=False):
            typer.echo(f"invalid action: {_problem(error)}", err=True)
        raise typer.Exit(2) from None
    kafka = KafkaSettings()
    # the worker finds a case's state on the partition murmur2 (Java's partitioner) picks
    producer = BlockingProducer(kafka.librdkafka())
    # stamp the action once connected: its time is when it is sent, not before connecting
    producer.wait_connected(kafka.topics.agent_actions, timeout_seconds=10)
    record = record.model_copy(update={"at": datetime.now(UTC)})
    value = record.model_dump_json().encode("utf-8")
    try:
        producer.send([Record(kafka.topics.agent_actions, case_id.encode("utf-8"), value)])
    except PublishError as error:
        typer.echo(f"not published: {error}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"{record.type.value} {case_id} ({record.action_id})")


def _problem(error: ErrorDetails) -> str:
    """`field: problem` for one validation error, without pydantic's "Value error, " prefix."""
    field = ".".join(str(part) for part in error["loc"])
    context = error.get("ctx") or {}
    message = str(context["error"]) if "error" in context else error["msg"]
    return f"{field}: {message}" if field else message
