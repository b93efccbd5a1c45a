"""`escalator rules publish`: validate a rule set and publish it for every worker to load."""

from __future__ import annotations

import getpass
from datetime import UTC, datetime
from pathlib import Path

from confluent_kafka import Producer

from connectors.publisher import PRODUCER_DEFAULTS
from escalator.rulefiles import read_referenced_file, read_rule_sources
from escalator.settings import KafkaSettings
from escalator.topic_admin import ensure_topics
from rules import CompiledRuleSet, compile_sources
from schemas import ACTIVE_RULESET_KEY, RuleSetRecord


def build_record(path: Path) -> tuple[RuleSetRecord, CompiledRuleSet]:
    """Compile the rules at `path` (raising `RuleSetError` if invalid) into a record."""
    sources = read_rule_sources(path)
    referenced: dict[str, str] = {}

    def read_and_keep(name: str) -> str:
        referenced[name] = read_referenced_file(name)
        return referenced[name]

    ruleset = compile_sources(sources, read_file=read_and_keep)
    record = RuleSetRecord(
        version=ruleset.version,
        sources=dict(sources),
        files=referenced,
        published_at=datetime.now(UTC),
        published_by=getpass.getuser(),
    )
    return record, ruleset


def publish(kafka: KafkaSettings, record: RuleSetRecord, queues: list[str]) -> None:
    """Create missing topics (the rules topic, new queues) and write the record, acks=all."""
    topics = kafka.topics
    wanted: dict[str, dict[str, str]] = {topics.rules: {"cleanup.policy": "compact"}}
    wanted.update({topics.queue(name): {} for name in queues})
    ensure_topics(kafka, wanted)
    producer = Producer({**PRODUCER_DEFAULTS, **kafka.librdkafka()})
    errors: list[str] = []
    producer.produce(
        topics.rules,
        key=ACTIVE_RULESET_KEY,
        value=record.model_dump_json().encode("utf-8"),
        on_delivery=lambda error, _message: errors.append(str(error)) if error else None,
    )
    if producer.flush(30) or errors:
        raise RuntimeError(f"rule set not published: {errors or 'delivery timed out'}")
