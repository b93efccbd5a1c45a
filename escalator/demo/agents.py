"""Simulated agents for the demo, and the demo's rules with short SLA targets.

So that a demo run exercises the SLA side too (clocks, warnings, breaches, escalations,
first-response and resolution times, the unanswered floor): the rules give every case a
24x7 SLA measured in seconds, and the agents answer most new cases after a random delay,
some within the target and some late, resolve some of those, and leave the rest unanswered.
Their actions go through Kafka like any agent tool's (`agent.actions`, keyed by case id).
A breach also pages the `oncall` pager until acknowledged; the agents acknowledge a paged
case a few seconds after its page, and escalate some cases to tier 2 with a reason.
"""

from __future__ import annotations

import contextlib
import random
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.exc import SQLAlchemyError

from kafkaio import Record
from kafkaio.blocking import BlockingProducer
from queues import CaseStore, StoreNotInitialisedError
from schemas import AgentAction, AgentActionType, Topics

DEMO_RULES = """\
version: 1
calendars:
  always: 24x7
sla:
  demo:
    calendar: always
    targets:
      urgent: {first_response: 20s, resolution: 5m}
      high: {first_response: 40s, resolution: 10m}
      normal: {first_response: 60s, resolution: 30m}
      low: {first_response: 2m}
    warn_at: 50%
escalations:
  demo:
    - {on: warning, notify: [team-leads]}
    - {on: breach, clock: first_response, queue: tier2, priority: +1, tags: [breached]}
    - {on: breach, clock: first_response, page: oncall, until: acknowledged, every: 10s,
       max_pages: 6}
pagers:
  oncall: {slack: {}}
queues:
  general: {}
  billing: {}
  legal: {}
  social: {}
  tier2: {}
acknowledgements:
  default:
    subject: "We received your message [#{{ case.reference }}]"
    text: "You will hear from us by {{ promise.first_response }}. Not solved? {{ links.escalate }}"
    update:
      text: "Case {{ case.reference }} is escalated: we answer by {{ promise.first_response }}."
routes:
  queue: general
  priority: normal
  sla: demo
  escalation: demo
  routes:
    - name: customer-escalated
      when: {case.customer_escalations: {at_least: 1}}
      priority: +1
      tags: [customer-escalated]
      continue: true
    - name: legal-threat
      when: {text: {any: [lawyer, attorney, "legal action"]}}
      priority: urgent
      queue: legal
    - name: billing
      when: {text: {any: [refund, refunded, invoice, charged, billing]}}
      queue: billing
    - name: social
      when: {channel: [twitter, facebook]}
      priority: high
      queue: social
"""

"""The demo's rule set: short 24x7 SLA targets, so clocks fall due during a demo run."""

DEMO_QUEUES = ["general", "billing", "social", "legal", "tier2"]
"""The demo rules' queues, the ones the demo's agent works first."""

REPLY_SHARE = 0.8
"""Share of cases an agent answers; the rest stay unanswered (and breach)."""
RESOLVE_SHARE = 0.6
"""Share of answered cases an agent then resolves."""
ESCALATE_SHARE = 0.15
"""Share of answered cases an agent escalates to tier 2 (with a reason) when answering."""
ACK_DELAY_SECONDS = (2.0, 6.0)
"""How long after seeing a page an agent acknowledges it (random in this range)."""
ESCALATION_REASON = "Customer reports the problem again; needs a tier 2 engineer."


@dataclass
class _Plan:
    reply_at: datetime | None
    resolve_at: datetime | None
    escalate: bool = False
    replied: bool = False
    resolved: bool = False


class DemoAgents:
    """Answers and resolves cases of the case store with random, seeded delays."""

    def __init__(self, bootstrap: str, topics: Topics, database_url: str, seed: int = 7) -> None:
        self._producer = BlockingProducer({"bootstrap.servers": bootstrap, "linger.ms": 5})
        self._topic = topics.agent_actions
        self._database_url = database_url
        self._random = random.Random(seed)
        self._plans: dict[str, _Plan] = {}
        self.replies = 0
        self.resolutions = 0
        self.escalations = 0
        self.acknowledgements = 0
        self._ack_at: dict[str, datetime] = {}

    def step(self, now: datetime | None = None) -> None:
        """Plan new cases and send the replies and resolutions that are due."""
        now = now or datetime.now(UTC)
        for case_id in self._open_case_ids():
            if case_id not in self._plans:
                self._plans[case_id] = self._plan(now)
        for case_id, plan in self._plans.items():
            if plan.reply_at and not plan.replied and plan.reply_at <= now:
                self._act(case_id, AgentActionType.REPLY, now)
                plan.replied = True
                self.replies += 1
                if plan.escalate:
                    self._act(case_id, AgentActionType.ESCALATE, now)
                    self.escalations += 1
            if plan.resolve_at and plan.replied and not plan.resolved and plan.resolve_at <= now:
                self._act(case_id, AgentActionType.RESOLVE, now)
                plan.resolved = True
                self.resolutions += 1

    def acknowledge_pages(self, paging_cases: set[str], now: datetime | None = None) -> None:
        """Acknowledge each case a page waits on, a few seconds after first seeing it."""
        now = now or datetime.now(UTC)
        for case_id in paging_cases:
            if case_id not in self._ack_at:
                delay = self._random.uniform(*ACK_DELAY_SECONDS)
                self._ack_at[case_id] = now + timedelta(seconds=delay)
        for case_id, due in list(self._ack_at.items()):
            if case_id not in paging_cases:
                del self._ack_at[case_id]  # acknowledged, claimed or resolved meanwhile
            elif due <= now:
                self._act(case_id, AgentActionType.ACKNOWLEDGE, now)
                self.acknowledgements += 1
                # if the case is paged again (a new step), acknowledge that page too
                self._ack_at[case_id] = now + timedelta(seconds=30)

    def close(self) -> None:
        """Deliver what is queued."""
        self._producer.close(10)

    def _plan(self, now: datetime) -> _Plan:
        if self._random.random() >= REPLY_SHARE:
            return _Plan(reply_at=None, resolve_at=None)
        reply_at = now + timedelta(seconds=self._random.uniform(2, 75))
        resolve_at = None
        if self._random.random() < RESOLVE_SHARE:
            resolve_at = reply_at + timedelta(seconds=self._random.uniform(3, 30))
        escalate = self._random.random() < ESCALATE_SHARE
        return _Plan(reply_at=reply_at, resolve_at=resolve_at, escalate=escalate)

    def _open_case_ids(self) -> list[str]:
        try:
            with contextlib.closing(CaseStore.open(self._database_url)) as store:
                cases = store.list_cases(status="new", limit=500)
                cases += store.list_cases(status="open", limit=500)
        except (StoreNotInitialisedError, SQLAlchemyError):
            return []  # the projection has not created the schema yet
        return [case.case_id for case in cases]

    def _act(self, case_id: str, kind: AgentActionType, now: datetime) -> None:
        escalating = kind is AgentActionType.ESCALATE
        action = AgentAction(
            action_id=str(uuid.uuid4()),
            case_id=case_id,
            agent_id="demo-agent",
            type=kind,
            at=now,
            text="Thanks for writing, we are on it." if kind is AgentActionType.REPLY else None,
            queue="tier2" if escalating else None,
            reason=ESCALATION_REASON if escalating else None,
        )
        value = action.model_dump_json().encode()
        self._producer.enqueue([Record(self._topic, case_id.encode("utf-8"), value)])
