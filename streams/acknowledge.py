"""Stage C's acknowledgements: tell the customer when they will hear back, and when that moves.

When a customer message opens or reopens a case, the case's route (or the `default`
template) chooses an acknowledgement; it is rendered with the due time of the clock that
says when the customer hears back (`first_response` while no agent replied, else
`next_response`) and written as `case.acknowledged`, which the reply service delivers.
When an escalation or a priority change later moves that due time earlier, the template's
optional `update` is written the same way. Loop safety (RFC 3834): no acknowledgement
answers an automatic message, mailing-list or bulk mail, a no-reply address, a customer's
escalation request, or a public post unless the template says `public: true`; the reply
service adds the per-customer window. Everything here is a pure function of the case, the
message and the rule set, so a replay writes the same events.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import datetime

from jinja2 import TemplateError

from rules import (
    CompiledRuleSet,
    acknowledgement_variables,
    due_at_text,
    human_time,
    is_public,
    local_zone,
)
from schemas import (
    AcknowledgementPayload,
    CaseEvent,
    CaseEventType,
    ClockName,
    ClockState,
    InboundMessage,
    PromiseView,
)
from schemas.ids import event_id_for
from schemas.links import EscalationLinks
from streams.case_state import CaseState
from streams.threader import is_auto_reply

__all__ = [
    "Acknowledger",
    "customer_escalated_event",
    "is_escalation_request",
    "promise_due",
    "promise_update",
    "why_not_acknowledged",
]

log = logging.getLogger(__name__)

ACK_KEY_PREFIX = "ack:"
"""Message keys of acknowledgements (`ack:<event id>`): the reply service sends these too."""

_NO_REPLY = re.compile(
    r"^(no[-_.]?reply|do[-_.]?not[-_.]?reply|mailer[-_.]?daemon|postmaster|bounces?)([-+].*)?@"
    r"|noreply|donotreply",
    re.IGNORECASE,
)
_PROMISE_STATES = (ClockState.RUNNING, ClockState.WARNING)
_TIMEZONE_KEYS = ("timezone", "time_zone", "tz")


def is_escalation_request(message: InboundMessage) -> bool:
    """A customer's "still not solved?" submission (only the ingress's page may flag one)."""
    return message.metadata.get("escalation_request") is True


def why_not_acknowledged(message: InboundMessage, public_allowed: bool) -> str | None:
    """Why this message gets no acknowledgement (RFC 3834 and public posts), or None."""
    metadata = message.metadata
    if is_auto_reply(message):
        return "an automatic message (auto-reply, bounce or bulk mail)"
    if metadata.get("mailing_list") or metadata.get("bulk"):
        return "mailing-list or bulk mail"
    if _NO_REPLY.search(message.sender or ""):
        return f"a no-reply address ({message.sender[:100]})"
    if is_escalation_request(message):
        return "an escalation request (its page confirms it)"
    if is_public(message) and not public_allowed:
        return "a public post (the template does not say public: true)"
    return None


def promise_due(state: CaseState) -> tuple[str, datetime] | None:
    """The clock that says when the customer hears back, and its due time; None without one."""
    for clock in (ClockName.FIRST_RESPONSE.value, ClockName.NEXT_RESPONSE.value):
        view = state.sla.get(clock)
        if view is not None and view.due_at is not None and view.state in _PROMISE_STATES:
            return clock, view.due_at
    return None


@dataclass(frozen=True)
class Acknowledger:
    """Writes a case's acknowledgements; `links` signs `links.escalate` (None: empty link)."""

    links: EscalationLinks | None = None

    def acknowledge(
        self,
        state: CaseState,
        message: InboundMessage,
        template_name: str | None,
        ruleset: CompiledRuleSet,
        kind: str,
        at: datetime,
    ) -> list[CaseEvent]:
        """The `case.acknowledged` event for a case `message` opened or reopened, if any.

        Changes `state` to remember what was promised (for a later update).
        """
        template = ruleset.acknowledgements.get(template_name or "")
        promise = promise_due(state)
        if template is None or promise is None:
            return []
        why_not = why_not_acknowledged(message, template.public)
        if why_not is not None:
            log.debug("case %s: no acknowledgement: %s", state.case_id, why_not)
            return []
        event_type = CaseEventType.CASE_ACKNOWLEDGED.value
        event_id = event_id_for(state.case_id, event_type, message.message_key)
        link = ""
        if self.links is not None:
            link = self.links.url(state.case_id, state.customer_id, event_id, at)
        zone = local_zone(_customer_zone(message), _calendar_zone(state, ruleset))
        clock, due = promise
        variables = acknowledgement_variables(
            state.case_id,
            due,
            zone,
            link,
            queue=state.queue or "",
            priority=state.priority.value if state.priority else "",
            channel=message.channel,
        )
        try:
            rendered = template.render(variables, message.channel, message.language, update=False)
        except TemplateError as exc:  # the sandbox refused something the check cannot see
            log.warning(
                "case %s: acknowledgement %s not rendered: %s", state.case_id, template, exc
            )
            return []
        if rendered is None:
            return []
        payload = AcknowledgementPayload(
            kind=kind,
            template=template.name,
            message_key=ACK_KEY_PREFIX + event_id,
            customer_id=state.customer_id,
            channel=message.channel,
            recipient=message.sender,
            subject=rendered.subject,
            text=rendered.text,
            thread_ref=message.thread_ref,
            in_reply_to=message.external_id,
            language=message.language,
            promise=_promise(clock, due, zone),
        )
        state.acknowledgement = template.name
        state.acknowledged_clock = clock
        state.acknowledged_due = due
        state.acknowledged_zone = zone
        state.acknowledged_to = payload.model_dump(
            include={"channel", "recipient", "thread_ref", "in_reply_to", "language"}
        )
        state.escalate_link = link
        return [_event(state, event_id, at, payload)]


def promise_update(state: CaseState, ruleset: CompiledRuleSet, at: datetime) -> list[CaseEvent]:
    """The `update` acknowledgement when the promised due time moved earlier, if any."""
    promised = state.acknowledged_due
    current = promise_due(state)
    if promised is None or current is None or current[0] != state.acknowledged_clock:
        return []
    clock, due = current
    if due_at_text(due) >= due_at_text(promised):  # to the second, as the customer was told
        return []
    template = ruleset.acknowledgements.get(state.acknowledgement or "")
    target = state.acknowledged_to or {}
    zone = state.acknowledged_zone or "UTC"
    state.acknowledged_due = due  # told or not, this is the promise from now on
    if template is None or template.update is None:
        return []
    variables = acknowledgement_variables(
        state.case_id,
        due,
        zone,
        state.escalate_link or "",
        queue=state.queue or "",
        priority=state.priority.value if state.priority else "",
        channel=str(target.get("channel") or ""),
    )
    channel = str(target.get("channel") or "email")
    try:
        rendered = template.render(variables, channel, target.get("language"), update=True)
    except TemplateError as exc:
        log.warning("case %s: acknowledgement update not rendered: %s", state.case_id, exc)
        return []
    if rendered is None:
        return []
    event_type = CaseEventType.CASE_ACKNOWLEDGED.value
    event_id = event_id_for(state.case_id, event_type, "update", due_at_text(due))
    payload = AcknowledgementPayload(
        kind="update",
        template=template.name,
        message_key=ACK_KEY_PREFIX + event_id,
        customer_id=state.customer_id,
        channel=channel,
        recipient=target.get("recipient"),
        subject=rendered.subject,
        text=rendered.text,
        thread_ref=target.get("thread_ref"),
        in_reply_to=target.get("in_reply_to"),
        language=target.get("language"),
        promise=_promise(clock, due, zone),
        previous_due_at=due_at_text(promised),
    )
    return [_event(state, event_id, at, payload)]


def customer_escalated_event(state: CaseState, message: InboundMessage, at: datetime) -> CaseEvent:
    """`case.customer_escalated`: the customer asked, through their link, to escalate."""
    kind = CaseEventType.CASE_CUSTOMER_ESCALATED.value
    text = message.text.strip()
    return CaseEvent(
        event_id=event_id_for(state.case_id, kind, message.message_key),
        case_id=state.case_id,
        type=kind,
        at=at,
        reason=f"the customer asked to escalate (request {state.customer_escalations})"
        + (f": {text[:200]}" if text else ""),
        payload={
            "customer_id": state.customer_id,
            "message_key": message.message_key,
            "escalations": state.customer_escalations,
            "link": str(message.metadata.get("escalation_link") or ""),
            "text": text,
        },
    )


def _event(
    state: CaseState, event_id: str, at: datetime, payload: AcknowledgementPayload
) -> CaseEvent:
    promise = payload.promise
    verb = "told again, sooner" if payload.kind == "update" else "acknowledged"
    return CaseEvent(
        event_id=event_id,
        case_id=state.case_id,
        type=CaseEventType.CASE_ACKNOWLEDGED.value,
        at=at,
        reason=f"customer {verb} on {payload.channel} ({payload.template}): "
        f"{promise.clock} by {promise.local} ({promise.due_at})",
        payload=payload.model_dump(mode="json"),
    )


def _promise(clock: str, due: datetime, zone: str) -> PromiseView:
    return PromiseView(
        clock=clock, due_at=due_at_text(due), local=human_time(due, zone), timezone=zone
    )


def _customer_zone(message: InboundMessage) -> str | None:
    extra = message.customer.model_extra or {}
    for key in _TIMEZONE_KEYS:
        value = extra.get(key) or message.metadata.get(key)
        if isinstance(value, str):
            return value
    return None


def _calendar_zone(state: CaseState, ruleset: CompiledRuleSet) -> str | None:
    policy = ruleset.sla_policies.get(state.sla_policy or "")
    return policy.calendar.timezone if policy is not None else None
