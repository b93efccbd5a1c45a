"""Who may do what at the desk: every authorisation rule of both doors, stated once.

The API (`routes_*`, `events`) and the console (`console.pages`) ask these functions and
nothing else. They are pure: the caller looks up the case, the destination queue and the
target agent, and a rule either returns or raises `RefusedError`, whose status both doors answer
with (the API as JSON, the console as a page). Ownership is not decided here: the stream
decides who owns a case (see `queues.desk.gateway`); these rules decide who may ask.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol, TypeVar

from queues.desk.directory import Agent, Role
from schemas import AgentActionType


class Refusal(StrEnum):
    """Why a request was refused; each maps to one HTTP status."""

    NO_SUCH_CASE = "no_such_case"
    NOT_MEMBER = "not_member"
    NOT_LEAD = "not_lead"
    NOT_ADMIN = "not_admin"
    NO_SUCH_AGENT = "no_such_agent"
    NO_AGENT_HERE = "no_agent_here"
    NO_SUCH_QUEUE = "no_such_queue"
    TARGET_NOT_MEMBER = "target_not_member"
    NO_SUCH_CUSTOMER = "no_such_customer"


_STATUS = {
    Refusal.NO_SUCH_CASE: 404,
    Refusal.NOT_MEMBER: 403,
    Refusal.NOT_LEAD: 403,
    Refusal.NOT_ADMIN: 403,
    Refusal.NO_SUCH_AGENT: 422,
    Refusal.NO_AGENT_HERE: 404,
    Refusal.NO_SUCH_QUEUE: 422,
    Refusal.TARGET_NOT_MEMBER: 422,
    Refusal.NO_SUCH_CUSTOMER: 404,
}


class RefusedError(Exception):
    """A request an agent may not make, with the reason in words."""

    def __init__(self, refusal: Refusal, detail: str) -> None:
        super().__init__(detail)
        self.refusal = refusal
        self.detail = detail

    @property
    def status_code(self) -> int:
        """403 (not allowed), 404 (no such case) or 422 (names something that cannot take it)."""
        return _STATUS[self.refusal]


class CaseFacts(Protocol):
    """What the rules read of a case (a `CaseRow` has it)."""

    @property
    def queue(self) -> str | None:
        """The queue the case waits in."""

    @property
    def assignee(self) -> str | None:
        """Its owner, if any."""


Case = TypeVar("Case", bound=CaseFacts)


def require_queue(agent: Agent, queue: str | None) -> None:
    """Unless the agent may see `queue` (admins see every queue): 403."""
    if not agent.sees(queue):
        raise RefusedError(Refusal.NOT_MEMBER, f"{agent.name} is not a member of queue {queue!r}")


def require_lead(agent: Agent, what: str) -> None:
    """Unless the agent is a lead or an admin: 403."""
    if not agent.may_reassign:
        raise RefusedError(
            Refusal.NOT_LEAD,
            f"{what} needs the lead or admin role; {agent.name} is an {agent.role.value}",
        )


def require_admin(agent: Agent, what: str) -> None:
    """Unless the agent is an admin: 403."""
    if agent.role is not Role.ADMIN:
        raise RefusedError(Refusal.NOT_ADMIN, f"{what} needs the admin role")


def see_case(agent: Agent, case: Case | None, case_id: str) -> Case:
    """The case, which its owner and the agents of its queue see (404 if there is none)."""
    if case is None:
        raise RefusedError(Refusal.NO_SUCH_CASE, f"no case {case_id}")
    if case.assignee != agent.name:
        require_queue(agent, case.queue)
    return case


def see_customer(
    agent: Agent, places: Iterable[tuple[str | None, str | None]], customer_id: str
) -> None:
    """A customer's history (all their cases) is for whoever may see one of their cases:
    its owner or an agent of its queue (admins: every customer). `places` are the
    (queue, owner) pairs of the customer's cases. Otherwise 404, as for a customer with no
    case: the answer does not tell that the customer exists."""
    for queue, owner in places:
        if owner == agent.name or agent.sees(queue):
            return
    if agent.role is Role.ADMIN:
        return
    raise RefusedError(Refusal.NO_SUCH_CUSTOMER, f"no customer {customer_id} in your queues")


def shares_a_queue(agent: Agent, other: Agent) -> bool:
    """Whether `agent` sees `other` (admins see everyone)."""
    return agent.role is Role.ADMIN or bool(other.queues & agent.queues)


def may_follow(agent: Agent, queue: str | None, owner: str | None) -> None:
    """Following a queue's changes needs its membership; another agent's, a lead."""
    if queue is not None:
        require_queue(agent, queue)
    if owner is not None and owner != agent.name:
        require_lead(agent, "following another agent's cases")


def may_set_presence(agent: Agent, name: str, other: Agent | None) -> None:
    """Everyone sets their own presence; leads set that of agents who share a queue with them."""
    if name == agent.name:
        if other is None:
            raise RefusedError(Refusal.NO_AGENT_HERE, f"no agent {name!r}")
        return
    require_lead(agent, "setting another agent's presence")
    if other is None or not shares_a_queue(agent, other):
        raise RefusedError(Refusal.NO_AGENT_HERE, f"no agent {name!r} in your queues")


def may_move_to(agent: Agent, queue: str, exists: bool) -> None:
    """A case moves only to a queue the mover sees (403) and that exists (422)."""
    require_queue(agent, queue)
    if not exists:
        raise RefusedError(
            Refusal.NO_SUCH_QUEUE,
            f"no queue {queue!r} (a queue exists once a case is routed to it "
            "or an admin creates it with `escalator agents queue`)",
        )


def may_take(name: str, target: Agent | None, queue: str | None) -> None:
    """A case goes only to an agent who exists and sees its queue (422 otherwise)."""
    if target is None:
        raise RefusedError(Refusal.NO_SUCH_AGENT, f"no agent {name!r}")
    if not target.sees(queue):
        raise RefusedError(
            Refusal.TARGET_NOT_MEMBER, f"agent {target.name} is not a member of queue {queue!r}"
        )


def may_act(
    agent: Agent,
    kind: AgentActionType,
    case_id: str,
    case: CaseFacts | None,
    *,
    destination: str | None = None,
    destination_exists: bool = False,
    to_agent: str | None = None,
    target: Agent | None = None,
) -> None:
    """The one check of every case action, in order: the case (404, 403), the role (403),
    the destination queue (403, 422) and the agent who is to take the case (422)."""
    if kind is AgentActionType.ESCALATE:
        may_escalate(agent, case, case_id, destination, destination_exists)
        return
    queue = see_case(agent, case, case_id).queue
    if kind is AgentActionType.ASSIGN:
        require_lead(agent, "assigning a case")
    if destination is not None:
        may_move_to(agent, destination, destination_exists)
        queue = destination
    if to_agent is not None:
        may_take(to_agent, target, queue)


def may_escalate(
    agent: Agent,
    case: CaseFacts | None,
    case_id: str,
    destination: str | None,
    destination_exists: bool,
) -> None:
    """Leads and admins escalate any case; agents the cases of their queues (403), owned or not.

    The destination is the point of an escalation: it may be a queue the escalator does not
    work (tier 2, duty managers), but it must exist (422).
    """
    if case is None:
        raise RefusedError(Refusal.NO_SUCH_CASE, f"no case {case_id}")
    if not agent.may_reassign:
        require_queue(agent, case.queue)
    if destination is not None and not destination_exists:
        raise RefusedError(
            Refusal.NO_SUCH_QUEUE,
            f"no queue {destination!r} (a queue exists once a case is routed to it "
            "or an admin creates it with `escalator agents queue`)",
        )


@dataclass(frozen=True)
class ProviderAcknowledgement:
    """An acknowledgement a pager provider's webhook reported, its signature already checked.

    `key` is the page's dedup key (PagerDuty) or alias (Opsgenie), which starts with the case
    id; `action_id` derives from the provider's event, so a redelivered webhook is one action.
    """

    provider: str
    key: str
    user: str
    action_id: str
    note: str | None = None

    @property
    def agent_id(self) -> str:
        """Who acknowledged, as the case's events record it: `pagerduty:Jane Doe`."""
        return f"{self.provider}:{self.user}"[:64]


def provider_may_acknowledge(acknowledgement: ProviderAcknowledgement, case: object) -> bool:
    """A signed provider acknowledges the pages of a case that exists (its signature is its
    authority: the on-call person need not be a desk agent); anything else is not ours."""
    return case is not None and bool(acknowledgement.key.partition("/")[0])


_NEVER_OVERRIDES = frozenset({AgentActionType.CLAIM, AgentActionType.REOPEN})
"""Nobody, not even a lead, claims a case someone else owns (a lead assigns it instead)."""


def overrides(agent: Agent, kind: AgentActionType) -> bool:
    """Whether the action acts on a case another agent owns: leads' and admins' do, but
    never a claim or a reopen; an assignment always does."""
    if kind is AgentActionType.ASSIGN:
        return True
    return agent.may_reassign and kind not in _NEVER_OVERRIDES
