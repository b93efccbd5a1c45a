"""The shadow rule set and its disagreements with the active one.

`escalator rules publish --shadow` writes a `ShadowRuleSet` to the compacted
`rules.candidate` topic; every worker evaluates it beside the active set on each customer
message without acting on it, and writes a `ShadowDisagreement` to `rules.shadow` when
the two decide differently.
"""

from __future__ import annotations

from typing import Any

from pydantic import AwareDatetime, Field

from schemas._common import Contract
from schemas._rules import RuleSetRecord

SHADOW_RULESET_KEY = b"shadow"
"""The one key of the `rules.candidate` topic: compaction keeps only the latest shadow."""


class ShadowRuleSet(Contract):
    """The shadow rule set as published, or none (`--shadow none` stops shadowing)."""

    record: RuleSetRecord | None = Field(
        description="The candidate set the workers evaluate beside the active one; null: none."
    )
    published_at: AwareDatetime
    published_by: str | None = None


class ShadowDisagreement(Contract):
    """One customer message the active and the shadow set decided differently.

    Keyed by `case_id` on `rules.shadow`; `active` and `shadow` are the two decisions as
    `escalator rules explain --json` prints them.
    """

    case_id: str
    message_key: str
    at: AwareDatetime = Field(description="When the message arrived (the decisions' time).")
    fields: list[str] = Field(
        description="What differs: queue, priority, tags, sla_policy, escalation_policy, "
        "sla.<clock> (a due time)."
    )
    active: dict[str, Any]
    shadow: dict[str, Any]
