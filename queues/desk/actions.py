"""Every agent action, once: both desk doors (the API and the console) call these functions.

Each action looks up what its rule needs, asks `authz` once (which raises `RefusedError`), and
publishes an agent action for the stream to decide (`ActionGateway.submit`); presence is a
record on `agents.presence` instead. The doors differ only in how they read their input
(JSON or a form, an `Idempotency-Key` or the form's nonce) and how they show the outcome.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from queues.desk import authz
from queues.desk.context import DeskContext
from queues.desk.directory import Agent, Presence
from queues.desk.gateway import Outcome
from queues.models import CaseRow
from schemas import AgentAction, AgentActionType, AgentPresence, CaseStatus, Priority


def visible_case(context: DeskContext, agent: Agent, case_id: str) -> CaseRow:
    """The case, if it exists (404) and the agent may see it (403). Blocking: reads the store."""
    return authz.see_case(agent, context.reads.case(case_id), case_id)


@dataclass(frozen=True)
class _Facts:
    case: CaseRow | None
    destination_exists: bool
    target: Agent | None


def _look_up(
    context: DeskContext, case_id: str, destination: str | None, to_agent: str | None
) -> _Facts:
    directory = context.directory
    return _Facts(
        case=context.reads.case(case_id),
        destination_exists=destination is not None and directory.queue(destination) is not None,
        target=directory.agent(to_agent) if to_agent is not None else None,
    )


async def _perform(
    context: DeskContext,
    agent: Agent,
    case_id: str,
    kind: AgentActionType,
    action_id: str | None,
    *,
    queue: str | None = None,
    to_agent: str | None = None,
    **fields: Any,
) -> Outcome:
    facts = await asyncio.to_thread(_look_up, context, case_id, queue, to_agent)
    authz.may_act(
        agent,
        kind,
        case_id,
        facts.case,
        destination=queue,
        destination_exists=facts.destination_exists,
        to_agent=to_agent,
        target=facts.target,
    )
    action = AgentAction(
        action_id=action_id or str(uuid.uuid4()),
        case_id=case_id,
        agent_id=agent.name,
        type=kind,
        at=datetime.now(UTC),
        queue=queue,
        to_agent=to_agent,
        override=authz.overrides(agent, kind),
        **fields,
    )
    return await context.gateway.submit(action)


async def claim(
    context: DeskContext,
    agent: Agent,
    case_id: str,
    *,
    action_id: str | None = None,
    reason: str | None = None,
) -> Outcome:
    """Take the case (or accept an assignment to me)."""
    return await _perform(context, agent, case_id, AgentActionType.CLAIM, action_id, reason=reason)


async def release(
    context: DeskContext, agent: Agent, case_id: str, *, action_id: str | None = None
) -> Outcome:
    """Give the case back to its queue (leads: anyone's case)."""
    return await _perform(context, agent, case_id, AgentActionType.RELEASE, action_id)


async def reply(
    context: DeskContext, agent: Agent, case_id: str, text: str, *, action_id: str | None = None
) -> Outcome:
    """A public reply, sent on the case's channel."""
    return await _perform(context, agent, case_id, AgentActionType.REPLY, action_id, text=text)


async def note(
    context: DeskContext, agent: Agent, case_id: str, text: str, *, action_id: str | None = None
) -> Outcome:
    """An internal note: agents see it, the customer does not."""
    return await _perform(context, agent, case_id, AgentActionType.NOTE, action_id, text=text)


async def set_status(
    context: DeskContext,
    agent: Agent,
    case_id: str,
    status: CaseStatus,
    *,
    action_id: str | None = None,
) -> Outcome:
    """Set new, open, pending or waiting_on_customer (which pauses the SLA clocks)."""
    return await _perform(context, agent, case_id, AgentActionType.STATUS, action_id, status=status)


async def resolve(
    context: DeskContext, agent: Agent, case_id: str, *, action_id: str | None = None
) -> Outcome:
    """Resolve the case."""
    return await _perform(context, agent, case_id, AgentActionType.RESOLVE, action_id)


async def reopen(
    context: DeskContext, agent: Agent, case_id: str, *, action_id: str | None = None
) -> Outcome:
    """Reopen a resolved case."""
    return await _perform(context, agent, case_id, AgentActionType.REOPEN, action_id)


async def transfer(
    context: DeskContext,
    agent: Agent,
    case_id: str,
    *,
    queue: str | None = None,
    to_agent: str | None = None,
    action_id: str | None = None,
) -> Outcome:
    """Move the case to a queue the mover sees, and/or give it to an agent who sees its queue."""
    return await _perform(
        context, agent, case_id, AgentActionType.TRANSFER, action_id, queue=queue, to_agent=to_agent
    )


async def assign(
    context: DeskContext,
    agent: Agent,
    case_id: str,
    to_agent: str,
    *,
    action_id: str | None = None,
) -> Outcome:
    """A lead gives the case to an agent of its queue, who accepts it by claiming."""
    return await _perform(
        context, agent, case_id, AgentActionType.ASSIGN, action_id, to_agent=to_agent
    )


async def escalate(
    context: DeskContext,
    agent: Agent,
    case_id: str,
    reason: str,
    *,
    queue: str | None = None,
    priority: Priority | None = None,
    action_id: str | None = None,
) -> Outcome:
    """Escalate the case to a queue and/or a priority, saying why (recorded as `case.escalated`)."""
    return await _perform(
        context,
        agent,
        case_id,
        AgentActionType.ESCALATE,
        action_id,
        queue=queue,
        priority=priority,
        reason=reason.strip(),
    )


async def acknowledge(
    context: DeskContext,
    agent: Agent,
    case_id: str,
    *,
    note: str | None = None,
    action_id: str | None = None,
) -> Outcome:
    """Acknowledge the case's pages: their repeats stop (`case.acknowledged_by_agent`)."""
    return await _perform(
        context, agent, case_id, AgentActionType.ACKNOWLEDGE, action_id, reason=note
    )


async def acknowledge_page(
    context: DeskContext, acknowledgement: authz.ProviderAcknowledgement
) -> Outcome | None:
    """A pager provider's signed webhook says someone acknowledged one of our pages: publish
    the `acknowledge` action in their name (without waiting for the verdict). None when the
    page is not one of ours (no such case): nothing is published."""
    case_id = acknowledgement.key.partition("/")[0]
    case = await asyncio.to_thread(context.reads.case, case_id)
    if not authz.provider_may_acknowledge(acknowledgement, case):
        return None
    action = AgentAction(
        action_id=acknowledgement.action_id,
        case_id=case_id,
        agent_id=acknowledgement.agent_id,
        type=AgentActionType.ACKNOWLEDGE,
        at=datetime.now(UTC),
        reason=acknowledgement.note,
    )
    return await context.gateway.submit(action, wait=False)


async def set_presence(
    context: DeskContext, by: Agent, name: str, presence: Presence
) -> Agent | None:
    """Publish a presence change of `name` to `agents.presence`; the agent once it is in the
    store, or None if the projection did not apply it within the verdict timeout (it will).

    Raises `PublishError` when the broker does not take the record.
    """
    other = await asyncio.to_thread(context.directory.agent, name)
    authz.may_set_presence(by, name, other)
    if by.name == name:  # changing one's own presence is a sign of life
        await asyncio.to_thread(context.directory.heartbeat, name)
    record = AgentPresence(
        presence_id=str(uuid.uuid4()),
        agent_id=name,
        presence=presence,
        at=datetime.now(UTC),
        by=by.name,
        reason=f"set by {by.name}",
    )

    def recorded(presence_id: str) -> bool:
        now = context.directory.agent(name)
        return now is not None and now.presence_id == presence_id

    done = await context.gateway.record_presence(record, recorded)
    return await asyncio.to_thread(context.directory.agent, name) if done else None
