"""The shadow rule set in stage C: evaluated beside the active one, never acted on.

For each customer message stage C routes, the shadow set decides on exactly the inputs
the active set saw (the message, the case's facts, the arrival time). When the two
decisions differ in what a case would get (queue, priority, tags, SLA policy, escalation
policy, a clock's due time), a `ShadowDisagreement` with both decisions goes to
`rules.shadow` with the batch's other records, and each differing field is counted in
`escalator_rules_shadow_disagreements_total{field}`. A shadow set that fails on a message
is counted under the field `error`; the active decision goes on regardless.
"""

from __future__ import annotations

import logging
from datetime import datetime

from rules import CaseFacts, CompiledRuleSet, Decision
from schemas import InboundMessage, ShadowDisagreement
from streams import metrics
from streams.output import OutputRecord

log = logging.getLogger(__name__)

COMPARED = ("queue", "priority", "tags", "sla_policy", "escalation_policy")
"""Decision fields compared (and every clock's due time, as `sla.<clock>`)."""


def differing_fields(active: Decision, shadow: Decision) -> list[str]:
    """The fields in which the shadow decision differs from the active one."""
    fields = [name for name in COMPARED if getattr(active, name) != getattr(shadow, name)]
    if active.tags != shadow.tags and set(active.tags) == set(shadow.tags):
        fields.remove("tags")  # the same tags in another order give the case the same tags
    for clock in sorted(active.sla_due.keys() | shadow.sla_due.keys()):
        if active.sla_due.get(clock) != shadow.sla_due.get(clock):
            fields.append(f"sla.{clock}")
    return fields


class ShadowCheck:
    """Compares one batch's decisions with the shadow set's; collects the disagreements."""

    def __init__(self, shadow: CompiledRuleSet, topic: str) -> None:
        self.shadow = shadow
        self.topic = topic
        self.records: list[OutputRecord] = []

    def for_case(self, case_id: str) -> _CaseCheck:
        """The check stage C hands `apply_message` for a message of this case."""
        return _CaseCheck(self, case_id)

    def compare(
        self,
        case_id: str,
        message: InboundMessage,
        facts: CaseFacts,
        at: datetime,
        active: Decision,
    ) -> None:
        """Decide with the shadow set and keep a disagreement if there is one."""
        metrics.SHADOW_EVALUATIONS.inc()
        try:
            shadow = self.shadow.evaluate(message, facts, at)
        except Exception:  # the shadow must never stop live routing
            log.warning("shadow rule set %s failed on %s", self.shadow.version, case_id)
            metrics.SHADOW_DISAGREEMENTS.labels("error").inc()
            return
        fields = differing_fields(active, shadow)
        if not fields:
            return
        for name in fields:
            metrics.SHADOW_DISAGREEMENTS.labels(name).inc()
        disagreement = ShadowDisagreement(
            case_id=case_id,
            message_key=message.message_key,
            at=at,
            fields=fields,
            active=active.to_json(),
            shadow=shadow.to_json(),
        )
        self.records.append(
            OutputRecord(
                topic=self.topic,
                key=case_id.encode("utf-8"),
                value=disagreement.model_dump_json().encode("utf-8"),
            )
        )


class _CaseCheck:
    """`ShadowCheck.compare` bound to one case: what `apply_message` calls."""

    def __init__(self, check: ShadowCheck, case_id: str) -> None:
        self._check = check
        self._case_id = case_id

    def __call__(
        self, message: InboundMessage, facts: CaseFacts, at: datetime, active: Decision
    ) -> None:
        self._check.compare(self._case_id, message, facts, at, active)
