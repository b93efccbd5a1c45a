"""Rule set versions: publish with a record of who and why, list, diff and roll back.

Every publish writes the active set to the compacted `rules` topic exactly as before
(the workers' hot reload reads nothing else) and, in the same Kafka transaction, a
`RuleSetVersion` to `rules.history`. A version's number is its position in that
one-partition topic, so it is the same for every reader and assigned by the broker.
A rollback is an ordinary publish of an earlier version's files: compiled again (it is
refused if it no longer compiles), written atomically and recorded as a new version.
"""

from __future__ import annotations

import difflib
import getpass
import os
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from escalator.settings import KafkaSettings
from escalator.topic_admin import ensure_topics
from kafkaio.rules_history import (
    HISTORY_TOPIC_CONFIG,
    publish_both,
    publisher_transactional_id,
    read_all,
)
from rules import CompiledRuleSet
from schemas import ACTIVE_RULESET_KEY, RuleSetRecord, RuleSetVersion
from streams.rules_watch import compile_record


@dataclass(frozen=True)
class Version:
    """A published rule set and its number (1 for the first publish)."""

    number: int
    entry: RuleSetVersion

    @property
    def record(self) -> RuleSetRecord:
        """The rule set as it went to the workers."""
        return self.entry.record


class UnknownVersionError(LookupError):
    """No published version has that number."""


def publisher_name(flag: str | None) -> str:
    """Who publishes: `--publisher`, else ESCALATOR_PUBLISHER, else the login name."""
    return flag or os.environ.get("ESCALATOR_PUBLISHER") or getpass.getuser()


def publish_version(
    kafka: KafkaSettings,
    record: RuleSetRecord,
    queues: list[str],
    *,
    message: str | None = None,
    rolled_back_from: int | None = None,
) -> Version:
    """Create missing topics, write the set and its history entry atomically; its version."""
    topics = kafka.topics
    wanted: dict[str, dict[str, str]] = {
        topics.rules: {"cleanup.policy": "compact"},
        topics.rules_history: dict(HISTORY_TOPIC_CONFIG),
    }
    wanted.update({topics.queue(name): {} for name in queues})
    ensure_topics(kafka, wanted)  # replicated like every topic; the history in one partition
    connection = kafka.librdkafka()
    entry = RuleSetVersion(
        publish_id=str(uuid.uuid4()),
        record=record,
        message=message,
        rolled_back_from=rolled_back_from,
    )
    publish_both(
        connection,
        active=(topics.rules, ACTIVE_RULESET_KEY, record.model_dump_json().encode("utf-8")),
        history=(
            topics.rules_history,
            entry.publish_id.encode("utf-8"),
            entry.model_dump_json().encode("utf-8"),
        ),
        transactional_id=publisher_transactional_id(topics.rules),
    )
    for version in reversed(history(kafka)):
        if version.entry.publish_id == entry.publish_id:
            return version
    raise RuntimeError("the published version is missing from the history topic")


def history(kafka: KafkaSettings) -> list[Version]:
    """Every published version, oldest first (records that do not parse keep their number)."""
    versions: list[Version] = []
    for number, raw in enumerate(read_all(kafka.librdkafka(), kafka.topics.rules_history), 1):
        try:
            versions.append(Version(number, RuleSetVersion.model_validate_json(raw)))
        except ValueError:
            continue
    return versions


def find(versions: list[Version], number: int) -> Version:
    """The version with this number, or `UnknownVersionError`."""
    for version in versions:
        if version.number == number:
            return version
    known = f"1 to {versions[-1].number}" if versions else "none yet"
    raise UnknownVersionError(f"no rule set version {number} (published versions: {known})")


def diff(old: Version, new: Version) -> str:
    """A unified diff of every rule file and referenced file between two versions."""
    lines: list[str] = []
    old_files = {**old.record.sources, **old.record.files}
    new_files = {**new.record.sources, **new.record.files}
    for name in sorted(old_files.keys() | new_files.keys()):
        before = old_files.get(name, "").splitlines(keepends=True)
        after = new_files.get(name, "").splitlines(keepends=True)
        lines.extend(
            difflib.unified_diff(
                before,
                after,
                fromfile=f"v{old.number}:{name}" if name in old_files else "/dev/null",
                tofile=f"v{new.number}:{name}" if name in new_files else "/dev/null",
            )
        )
    return "".join(line if line.endswith("\n") else line + "\n" for line in lines)


def rollback_record(version: Version, publisher: str) -> tuple[RuleSetRecord, CompiledRuleSet]:
    """An earlier version's files as a new record, compiled again (raises if now invalid)."""
    ruleset = compile_record(version.record)
    record = version.record.model_copy(
        update={
            "version": ruleset.version,  # the hash as this release computes it
            "published_at": datetime.now(UTC),
            "published_by": publisher,
        }
    )
    return record, ruleset
