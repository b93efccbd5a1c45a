"""Push assignment: hand each push queue's most urgent waiting case to the best agent.

The assigner proposes, the stream decides. Each pass reads the store (agents, presence,
loads, waiting cases) and publishes `assign` and `release` actions with their reason;
stage C, the only writer of a case, applies or refuses each one (`action.rejected`), so
a case is never owned twice whatever the assigner believed. One pass:

0. agents silent for longer than the presence timeout go offline (an `AgentPresence`
   record on `agents.presence`; see `queues.desk.presence`), so step 1 frees their cases
   once the record is in the store;
1. cases of offline agents go back to their queue (`release`, `expected_owner` = agent);
2. assignments not accepted within the queue's timeout go back, and that agent is not
   offered the same case again for a while;
3. for every push queue, waiting cases (priority, then SLA due time) go to the agent the
   queue's strategy picks among those online, skilled and with room on the case's channel.

Actions published but not yet visible in the store are "in flight": they count against
the agent's capacity and their case is skipped until the stream's verdict is projected.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from queues.desk import metrics
from queues.desk.choose import Candidate, choose, required_skills
from queues.desk.directory import Directory, Mode, Presence
from queues.desk.presence import DEFAULT_PRESENCE_TIMEOUT, expired
from queues.desk.reads import ACTIVE_STATUSES, UNRESOLVED_STATUSES, DeskReads
from schemas import AgentAction, AgentActionType, AgentPresence, CaseEventType
from schemas.ids import event_id_for

log = logging.getLogger(__name__)

ASSIGNER_AGENT_ID = "escalator"
"""The `agent_id` of the assigner's actions."""

IN_FLIGHT_TTL = timedelta(seconds=30)
"""How long an unanswered action blocks its case (the stream or projection may be down)."""

DECLINED_MEMORY = timedelta(minutes=10)
"""How long an agent who let an assignment time out is not offered that case again."""

WAITING_PER_PASS = 200
"""Waiting cases looked at per queue and pass."""


@dataclass(frozen=True)
class _InFlight:
    action: AgentAction
    queue: str | None
    channel: str | None


class Assigner:
    """One assignment pass at a time (`run_once`); `publish` sends an action to Kafka."""

    def __init__(
        self,
        directory: Directory,
        reads: DeskReads,
        publish: Callable[[list[AgentAction]], None],
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        publish_presence: Callable[[list[AgentPresence]], None] | None = None,
        presence_timeout: timedelta = DEFAULT_PRESENCE_TIMEOUT,
    ) -> None:
        self._directory = directory
        self._reads = reads
        self._publish = publish
        self._clock = clock
        self._publish_presence = publish_presence
        self._presence_timeout = presence_timeout
        self._in_flight: dict[str, _InFlight] = {}
        self._declined: dict[tuple[str, str], datetime] = {}
        self._expiring: dict[str, tuple[str | None, datetime]] = {}

    def run_once(self) -> list[AgentAction]:
        """Do one pass; the actions it published."""
        now = self._clock()
        self._settle(now)
        self._expire_presence(now)
        actions = self._requeue_offline(now) + self._requeue_unaccepted(now)
        actions += self._assign(now)
        if actions:
            self._publish(actions)
            for action in actions:
                log.info("%s %s: %s", action.type.value, action.case_id, action.reason)
        return actions

    def _settle(self, now: datetime) -> None:
        """Forget in-flight actions whose verdict reached the store (or that waited too long)."""
        for case_id, flight in list(self._in_flight.items()):
            action = flight.action
            verdicts = [
                event_id_for(case_id, kind, action.action_id)
                for kind in (CaseEventType.CASE_UPDATED.value, CaseEventType.ACTION_REJECTED.value)
            ]
            if now - action.at > IN_FLIGHT_TTL or self._reads.outcome(verdicts) is not None:
                del self._in_flight[case_id]
        for key, at in list(self._declined.items()):
            if now - at > DECLINED_MEMORY:
                del self._declined[key]

    def _expire_presence(self, now: datetime) -> list[AgentPresence]:
        """Publish `offline` for agents silent past the timeout (once per presence record)."""
        if self._publish_presence is None:
            return []
        records: list[AgentPresence] = []
        for expiry in expired(self._directory.agents(), now, self._presence_timeout):
            agent = expiry.agent
            sent = self._expiring.get(agent.name)
            if sent is not None and sent[0] == agent.presence_id and now - sent[1] < IN_FLIGHT_TTL:
                continue  # published; the projection has not applied it yet
            records.append(expiry.record(ASSIGNER_AGENT_ID, now, self._presence_timeout))
            self._expiring[agent.name] = (agent.presence_id, now)
        if records:
            self._publish_presence(records)
            for record in records:
                log.info("presence %s %s: %s", record.agent_id, record.presence, record.reason)
                metrics.ASSIGNER_DECISIONS.labels("presence_expired").inc()
        return records

    def _release(self, case_id: str, owner: str, reason: str, now: datetime) -> AgentAction:
        action = AgentAction(
            action_id=str(uuid.uuid4()),
            case_id=case_id,
            agent_id=ASSIGNER_AGENT_ID,
            type=AgentActionType.RELEASE,
            at=now,
            expected_owner=owner,
            reason=reason,
        )
        self._in_flight[case_id] = _InFlight(action, None, None)
        return action

    def _requeue_offline(self, now: datetime) -> list[AgentAction]:
        actions: list[AgentAction] = []
        offline = [a.name for a in self._directory.agents() if a.presence is Presence.OFFLINE]
        for case in self._reads.owned_by(offline, UNRESOLVED_STATUSES):
            if case.assignee is not None and case.case_id not in self._in_flight:
                reason = f"{case.assignee} went offline: back to queue {case.queue}"
                actions.append(self._release(case.case_id, case.assignee, reason, now))
                metrics.ASSIGNER_DECISIONS.labels("release_offline").inc()
        return actions

    def _requeue_unaccepted(self, now: datetime) -> list[AgentAction]:
        actions: list[AgentAction] = []
        timeouts = {q.name: q.accept_timeout_seconds for q in self._directory.queues()}
        for case, started in self._reads.pending_assignments():
            timeout = timeouts.get(case.queue or "", 120)
            if case.assignee is None or case.case_id in self._in_flight:
                continue
            if now - started >= timedelta(seconds=timeout):
                self._declined[(case.case_id, case.assignee)] = now
                reason = f"not accepted by {case.assignee} within {timeout}s"
                actions.append(self._release(case.case_id, case.assignee, reason, now))
                metrics.ASSIGNER_DECISIONS.labels("release_unaccepted").inc()
        return actions

    def _assign(self, now: datetime) -> list[AgentAction]:
        actions: list[AgentAction] = []
        for queue in self._directory.queues():
            if queue.mode is not Mode.PUSH:
                continue
            agents = [
                a for a in self._directory.agents(queue.name) if a.presence is Presence.ONLINE
            ]
            if not agents:
                continue
            names = [agent.name for agent in agents]
            loads = self._reads.loads(names)
            for flight in self._in_flight.values():
                target = flight.action.to_agent
                if flight.action.type is AgentActionType.ASSIGN and target in loads:
                    loads[target][flight.channel or "*"] += 1
            last = self._reads.last_assigned(names, queue.name)
            for flight in self._in_flight.values():  # not in the store yet, but decided
                target = flight.action.to_agent
                if flight.action.type is AgentActionType.ASSIGN and target in loads:
                    last[target] = max(last.get(target, flight.action.at), flight.action.at)
            for case in self._reads.waiting(queue.name, WAITING_PER_PASS):
                if case.case_id in self._in_flight or case.status not in ACTIVE_STATUSES:
                    continue
                candidates = [
                    Candidate(agent, loads[agent.name], last.get(agent.name))
                    for agent in agents
                    if (case.case_id, agent.name) not in self._declined
                ]
                choice = choose(
                    queue.strategy,
                    case.channel,
                    required_skills(queue, case.tags),
                    candidates,
                )
                if choice is None:
                    continue
                # distinct instants within a pass, so round robin sees the order it made
                at = now + timedelta(microseconds=len(actions))
                action = AgentAction(
                    action_id=str(uuid.uuid4()),
                    case_id=case.case_id,
                    agent_id=ASSIGNER_AGENT_ID,
                    type=AgentActionType.ASSIGN,
                    at=at,
                    to_agent=choice.agent,
                    reason=f"{choice.reason}; case priority {case.priority}, "
                    f"next SLA due {_iso(case.sla_due_at)}",
                )
                self._in_flight[case.case_id] = _InFlight(action, queue.name, case.channel)
                loads[choice.agent][case.channel or "*"] += 1
                last[choice.agent] = at
                actions.append(action)
                metrics.ASSIGNER_DECISIONS.labels("assign").inc()
        return actions


def _iso(value: datetime | None) -> str:
    return "none" if value is None else value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class AssignerService:
    """Runs the assigner every `tick_seconds` while this process leads the assigner group."""

    def __init__(
        self,
        assigner: Assigner,
        keep_alive: Callable[[float], bool],
        close: Callable[[], None],
        tick_seconds: float = 0.5,
    ) -> None:
        self._assigner = assigner
        self._keep_alive = keep_alive
        self._close = close
        self._tick = tick_seconds
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="desk-assigner", daemon=True)

    def start(self) -> None:
        """Start the background thread."""
        self._thread.start()

    def _run(self) -> None:
        try:
            while not self._stopping.is_set():
                if self._keep_alive(self._tick):
                    try:
                        self._assigner.run_once()
                    except Exception:  # a failed pass is retried next tick
                        log.exception("assignment pass failed")
        finally:
            self._close()

    def stop(self) -> None:
        """Stop after the current pass and leave the group."""
        self._stopping.set()
        self._thread.join(timeout=10)
