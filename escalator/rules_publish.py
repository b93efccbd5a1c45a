"""`escalator rules publish`: validate a rule set and publish it for every worker to load."""

from __future__ import annotations

import getpass
from datetime import UTC, datetime
from pathlib import Path

from escalator.rulefiles import read_referenced_file, read_rule_sources
from escalator.settings import KafkaSettings
from escalator.topic_admin import ensure_topics
from kafkaio import PublishError, Record
from kafkaio.blocking import produce_and_wait
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
    value = record.model_dump_json().encode("utf-8")
    try:
        produce_and_wait(kafka.librdkafka(), [Record(topics.rules, ACTIVE_RULESET_KEY, value)])
    except PublishError as error:
        raise RuntimeError(f"rule set not published: {error}") from error
