"""The rule set record on the compacted `rules` topic: what workers hot-reload."""

from __future__ import annotations

from pydantic import AwareDatetime, Field

from schemas._common import Contract

ACTIVE_RULESET_KEY = b"active"
"""The one key of the rules topic: compaction keeps only the latest rule set."""


class RuleSetRecord(Contract):
    """A validated rule set as published by `escalator rules publish`."""

    version: str = Field(
        description="Content hash of the sources, as the rules engine computes it."
    )
    sources: dict[str, str] = Field(description="Rule file name → YAML text.")
    files: dict[str, str] = Field(
        default_factory=dict, description="Files the rules refer to (e.g. .ics holidays) → text."
    )
    published_at: AwareDatetime
    published_by: str | None = None


class RuleSetVersion(Contract):
    """One published rule set as kept on the `rules.history` topic (one record per publish).

    Its number is its position among the committed records of that one-partition topic
    (the first is 1), so every reader numbers versions alike and no two publishes share one.
    """

    publish_id: str = Field(description="Unique id of this publish (also the record key).")
    record: RuleSetRecord = Field(description="The rule set exactly as it went to `rules`.")
    message: str | None = Field(default=None, description="Why it was published (--message).")
    rolled_back_from: int | None = Field(
        default=None, description="The earlier version this publish brought back, if any."
    )
