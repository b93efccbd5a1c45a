"""`rules backtest`: gather recorded history, replay it under two rule sets, compare.

History comes from JSONL files (inbound messages as documented, one per line, taken at
their `sent_at`; optionally agent actions, at their `at`) or from Kafka: the records of
`messages.inbound` (taken at their Kafka timestamp, as stage A takes them) and
`agent.actions` in the time range. A line or record that is not a valid message or
action is counted and left out, as the worker would dead-letter it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from escalator.backtest_report import compare
from kafkaio.record import ConsumedRecord
from rules import CompiledRuleSet
from schemas import AgentAction, InboundMessage
from streams.backtest import (
    HistoryItem,
    HistoryReader,
    IdentityFactory,
    Progress,
    in_order,
    replay_both,
    replay_end,
)
from streams.gc_pause import gc_paused
from streams.identity import IdentityDirectory
from streams.threader import ThreadingPolicy


@dataclass
class Backtest:
    """What to replay and under which rule sets."""

    baseline: CompiledRuleSet
    candidate: CompiledRuleSet
    messages: Path | None = None
    actions: Path | None = None
    start: datetime | None = None
    until: datetime | None = None
    threading: ThreadingPolicy = field(default_factory=ThreadingPolicy)
    identity: IdentityFactory = IdentityDirectory
    parallel: bool = True


@dataclass
class History:
    """Items in event-time order, and what was left out."""

    items: list[HistoryItem]
    invalid: int = 0
    first_invalid: str | None = None

    def refuse(self, where: str, error: ValidationError) -> None:
        """Count an input that is not a valid message or action (remember the first)."""
        self.invalid += 1
        if self.first_invalid is None:
            first = error.errors(include_url=False)[0]
            place = ".".join(str(part) for part in first["loc"]) or "(record)"
            self.first_invalid = f"{where}: {place}: {first['msg']}"


def from_files(messages: Path, actions: Path | None) -> History:
    """Inbound messages (and agent actions) from JSONL files."""
    history = History([])
    for number, line in _lines(messages):
        try:
            message = InboundMessage.model_validate_json(line)
        except ValidationError as error:
            history.refuse(f"{messages}:{number}", error)
            continue
        history.items.append(HistoryItem(message.sent_at, message=message))
    if actions is not None:
        for number, line in _lines(actions):
            try:
                action = AgentAction.model_validate_json(line)
            except ValidationError as error:
                history.refuse(f"{actions}:{number}", error)
                continue
            history.items.append(HistoryItem(action.at, action=action))
    return history


def from_records(records: Iterable[ConsumedRecord], inbound_topic: str) -> History:
    """Messages and actions from Kafka records, each replayed when it reached Kafka.

    A message counts as taken at its record's timestamp, as stage A takes it. An action
    keeps its own `at`, but is replayed when it reached Kafka if that was later: by then
    the worker had fired the deadlines that fell due meanwhile (an answer written after
    the breach does not undo it), and the replay must too.
    """
    history = History([])
    for record in records:
        where = f"{record.topic}[{record.partition}]@{record.offset}"
        if record.value is None:
            continue
        try:
            if record.topic == inbound_topic:
                message = InboundMessage.model_validate_json(record.value)
                history.items.append(HistoryItem(record.timestamp, message=message))
            else:  # where the worker met it: deadlines due before it arrived fired first
                action = AgentAction.model_validate_json(record.value)
                history.items.append(HistoryItem(max(action.at, record.timestamp), action=action))
        except ValidationError as error:
            history.refuse(where, error)
    return history


def run_backtest(
    job: Backtest, history: History | None = None, progress: Progress | None = None
) -> dict[str, Any]:
    """Replay the job's history (its files unless given) under both sets: the report.

    Read from files, the history is read by each replaying process for itself, at once.
    """
    if history is None and job.messages is None:
        raise ValueError("a backtest needs --messages FILE or history read from Kafka")
    given = history
    read: list[tuple[History, list[HistoryItem]]] = []  # this process's, once read

    def read_history() -> list[HistoryItem]:
        found = given
        if found is None:
            assert job.messages is not None  # checked above
            found = from_files(job.messages, job.actions)
        read.append((found, in_order(_within(found.items, job.start, job.until))))
        return read[-1][1]

    source: list[HistoryItem] | HistoryReader = read_history if given is None else read_history()
    before, after = replay_both(
        source,
        job.baseline,
        job.candidate,
        job.until,
        threading=job.threading,
        identity=job.identity,
        progress=progress,
        parallel=job.parallel,
    )
    history, items = read[-1]
    until = replay_end(items, job.until)
    with gc_paused():  # tens of thousands of differences, all kept: nothing to collect
        report = compare(before, after)
    report["range"] = {
        "from": _utc(job.start or (items[0].at if items else None)),
        "to": _utc(until),
    }
    report["history"] = {
        "messages": sum(1 for item in items if item.message is not None),
        "actions": sum(1 for item in items if item.action is not None),
        "invalid": history.invalid,
        "first_invalid": history.first_invalid,
    }
    return report


def _within(
    items: list[HistoryItem], start: datetime | None, until: datetime | None
) -> Iterator[HistoryItem]:
    for item in items:
        if (start is None or item.at >= start) and (until is None or item.at < until):
            yield item


def _lines(path: Path) -> Iterator[tuple[int, bytes]]:
    """The file's lines that are not blank, with their numbers (counted from 1)."""
    with path.open("rb") as lines:
        for number, line in enumerate(lines, 1):
            if not line.isspace():
                yield number, line


def _utc(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
