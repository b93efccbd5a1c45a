"""The shadow rule set: publish or stop it, summarise its disagreements, promote it.

The shadow set lives on the compacted one-partition `rules.candidate` topic as a
`ShadowRuleSet` (`record: null` when there is none); every worker evaluates it beside the
active set and writes its disagreements to `rules.shadow` (see `streams.shadow`).
Promoting is an ordinary publish of the shadow's files (validated, atomic, recorded in the
history as a new version), after which the shadow is stopped.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from escalator.rules_history import Version, publish_version
from escalator.settings import KafkaSettings
from escalator.topic_admin import ensure_topics
from kafkaio import Record
from kafkaio.blocking import produce_and_wait
from kafkaio.rules_history import read_all
from kafkaio.time_range import read_range
from rules import CompiledRuleSet
from schemas import SHADOW_RULESET_KEY, RuleSetRecord, ShadowDisagreement, ShadowRuleSet
from streams.rules_watch import compile_record


class NoShadowError(LookupError):
    """There is no shadow rule set to promote."""


def publish_shadow(kafka: KafkaSettings, record: RuleSetRecord | None, publisher: str) -> None:
    """Make `record` the shadow set of every worker (None: stop shadowing), acks=all."""
    topics = kafka.topics
    queues = sorted(compile_record(record).queues) if record is not None else []
    wanted: dict[str, dict[str, str]] = {
        topics.rules_candidate: {"cleanup.policy": "compact"},
        topics.rules_shadow: {},
    }
    # the shadow never routes, but promoting it must find its queues' topics ready
    wanted.update({topics.queue(name): {} for name in queues})
    ensure_topics(kafka, wanted)
    shadow = ShadowRuleSet(record=record, published_at=datetime.now(UTC), published_by=publisher)
    produce_and_wait(
        kafka.librdkafka(),
        [
            Record(
                topics.rules_candidate,
                SHADOW_RULESET_KEY,
                shadow.model_dump_json().encode("utf-8"),
            )
        ],
    )


def current_shadow(kafka: KafkaSettings) -> ShadowRuleSet | None:
    """The shadow set as last published (None when none ever was)."""
    values = read_all(kafka.librdkafka(), kafka.topics.rules_candidate)
    for raw in reversed(values):
        try:
            return ShadowRuleSet.model_validate_json(raw)
        except ValueError:
            continue
    return None


def promote(kafka: KafkaSettings, publisher: str, message: str | None) -> Version:
    """Publish the shadow set as the active one (a new version), then stop shadowing."""
    shadow = current_shadow(kafka)
    if shadow is None or shadow.record is None:
        raise NoShadowError("there is no shadow rule set to promote (rules publish --shadow)")
    ruleset = compile_record(shadow.record)  # refused here if it no longer compiles
    record = shadow.record.model_copy(
        update={
            "version": ruleset.version,
            "published_at": datetime.now(UTC),
            "published_by": publisher,
        }
    )
    why = message or f"promoted from the shadow set published by {shadow.published_by or '-'}"
    version = publish_version(kafka, record, sorted(ruleset.queues), message=why)
    publish_shadow(kafka, None, publisher)
    return version


@dataclass
class ShadowReport:
    """What the workers' disagreements say about a shadow set."""

    shadow_version: str | None
    disagreements: int = 0
    cases: int = 0
    by_field: Counter[str] = field(default_factory=Counter)
    moves: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    examples: list[ShadowDisagreement] = field(default_factory=list)
    first_at: datetime | None = None
    last_at: datetime | None = None

    def to_json(self, top: int) -> dict[str, Any]:
        """The report as one JSON object."""
        return {
            "shadow": self.shadow_version,
            "disagreements": self.disagreements,
            "cases": self.cases,
            "first_at": _utc(self.first_at),
            "last_at": _utc(self.last_at),
            "by_field": dict(self.by_field.most_common()),
            "changes": [
                {"field": name, "active": before, "shadow": after, "count": count}
                for (name, before, after), count in self.moves.most_common(top)
            ],
            "examples": [e.model_dump(mode="json") for e in self.examples[:top]],
        }


def report(kafka: KafkaSettings, version: str | None, examples: int = 20) -> ShadowReport:
    """Summarise the disagreements on `rules.shadow` of the shadow set `version` (None: all)."""
    summary = ShadowReport(shadow_version=version)
    cases: set[str] = set()
    seen: set[tuple[str, str, str]] = set()
    records = read_range(kafka.librdkafka(), [kafka.topics.rules_shadow], None, datetime.now(UTC))
    for record in records:
        try:
            disagreement = ShadowDisagreement.model_validate_json(record.value or b"")
        except ValueError:
            continue
        shadow_version = str(disagreement.shadow.get("rules_version"))
        if version is not None and shadow_version != version:
            continue
        once = (disagreement.case_id, disagreement.message_key, shadow_version)
        if once in seen:  # a batch written again after a crash
            continue
        seen.add(once)
        summary.disagreements += 1
        cases.add(disagreement.case_id)
        summary.by_field.update(disagreement.fields)
        for name in disagreement.fields:
            if name.startswith("sla."):  # due times differ per message: counted by field only
                continue
            summary.moves[
                name, _value(disagreement.active, name), _value(disagreement.shadow, name)
            ] += 1
        if len(summary.examples) < examples:
            summary.examples.append(disagreement)
        at = disagreement.at
        summary.first_at = at if summary.first_at is None else min(summary.first_at, at)
        summary.last_at = at if summary.last_at is None else max(summary.last_at, at)
    summary.cases = len(cases)
    return summary


def compiled_shadow(kafka: KafkaSettings) -> CompiledRuleSet | None:
    """The shadow set compiled, if there is one."""
    shadow = current_shadow(kafka)
    return None if shadow is None or shadow.record is None else compile_record(shadow.record)


def _value(decision: dict[str, Any], name: str) -> str:
    if name.startswith("sla."):
        due = (decision.get("sla") or {}).get(name.removeprefix("sla."))
        return "-" if not due else str(due.get("due_at"))
    value = decision.get(name)
    if isinstance(value, list):
        return "[" + ", ".join(map(str, value)) + "]"
    return "-" if value is None else str(value)


def _utc(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
