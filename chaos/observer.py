"""Follows `cases.events` from its beginning and checks the log's invariants as it grows.

It keeps, per event id, a hash of the event's content (not the event), and the few facts
the invariants need, so a run of 100,000 messages fits in a modest amount of memory:

- every accepted inbound message is in exactly one `message.appended` (by distinct event id);
- every case has exactly one `case.opened`;
- no event id appears with two different contents (a replay must write identical events);
- each SLA warning and breach fires at most once per clock run, and never when the clock
  was met before that deadline (a replayed reply must land before a breach it prevents).
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from confluent_kafka import Consumer, TopicPartition


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@dataclass
class LogFacts:
    """What the log says, reduced to what the invariants need."""

    records: int = 0
    content: dict[str, bytes] = field(default_factory=dict)
    conflicts: list[str] = field(default_factory=list)
    appended: dict[tuple[str, str], set[str]] = field(default_factory=lambda: defaultdict(set))
    opened: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    cases_seen: set[str] = field(default_factory=set)
    sla_fired: dict[tuple[str, str, str], set[str]] = field(
        default_factory=lambda: defaultdict(set)
    )
    sla_due: dict[str, tuple[str, str, str, datetime]] = field(default_factory=dict)
    met_at: dict[tuple[str, str], datetime] = field(default_factory=dict)
    replies_appended: set[str] = field(default_factory=set)
    replies_reported: set[str] = field(default_factory=set)
    """Message keys of replies the reply service reported (`reply.failed`, e.g. `in_doubt`)."""

    def add(self, raw: bytes) -> None:
        """Take one record of `cases.events`."""
        self.records += 1
        event: dict[str, Any] = json.loads(raw)
        event_id = str(event.get("event_id"))
        digest = hashlib.blake2b(
            json.dumps(event, sort_keys=True).encode(), digest_size=12
        ).digest()
        known = self.content.get(event_id)
        if known is None:
            self.content[event_id] = digest
        elif known != digest:
            self.conflicts.append(f"{event.get('type')} {event_id} of {event.get('case_id')}")
            return
        else:
            return  # the same event again: a harmless redelivery
        case_id = str(event.get("case_id"))
        kind = event.get("type")
        payload = event.get("payload") or {}
        self.cases_seen.add(case_id)
        if kind == "case.opened":
            self.opened[case_id].add(event_id)
        elif kind == "message.appended":
            message = payload.get("message") or {}
            if message.get("direction", "inbound") == "inbound":
                key = (str(message.get("channel")), str(message.get("external_id")))
                self.appended[key].add(event_id)
            elif message.get("direction") == "outbound":
                self.replies_appended.add(event_id)
        elif kind == "reply.failed":
            self.replies_reported.add(str(payload.get("message_key")))
        elif kind in ("sla.warning", "sla.breached"):
            clock_run = str(payload.get("discriminator", "")).split(":", 1)[0]
            self.sla_fired[(case_id, kind, clock_run)].add(event_id)
            self.sla_due[event_id] = (case_id, kind, clock_run, _time(str(event["at"])))
        elif kind == "sla.met":
            clock_run = str(payload.get("discriminator", "")).split(":", 1)[0]
            self.met_at[(case_id, clock_run)] = _time(str(event["at"]))


class Observer:
    """Tails `cases.events` in a thread; `facts` grows as the log does."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.facts = LogFacts()
        self._bootstrap = bootstrap
        self._topic = topic
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="chaos-observer", daemon=True)

    def start(self) -> None:
        """Begin reading from the first offset of every partition."""
        self._thread.start()

    def stop(self) -> None:
        """Stop reading."""
        self._stop.set()
        self._thread.join(timeout=30)

    def appended_count(self, accepted: set[tuple[str, str]]) -> int:
        """How many of the accepted messages are in the log so far."""
        with self._lock:
            return sum(1 for key in accepted if key in self.facts.appended)

    @property
    def distinct_events(self) -> int:
        """Distinct event ids read so far."""
        with self._lock:
            return len(self.facts.content)

    def _run(self) -> None:
        consumer = Consumer(
            {
                "bootstrap.servers": self._bootstrap,
                "group.id": f"chaos-observer-{self._topic}",
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
            }
        )
        metadata = consumer.list_topics(self._topic, timeout=30)
        partitions = metadata.topics[self._topic].partitions
        consumer.assign([TopicPartition(self._topic, p, 0) for p in partitions])
        try:
            while not self._stop.is_set():
                batch = consumer.consume(1000, timeout=0.5)
                with self._lock:
                    for message in batch:
                        value = message.value()
                        if message.error() is None and value:
                            self.facts.add(value)
        finally:
            consumer.close()


@dataclass(frozen=True)
class LogVerdict:
    """The log invariants of one scenario."""

    lost: int
    duplicated: int
    cases_without_one_opening: int
    event_id_conflicts: int
    sla_events_duplicated: int
    sla_fired_after_met: int
    conflict_examples: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """True when every count is zero."""
        return not any(
            (
                self.lost,
                self.duplicated,
                self.cases_without_one_opening,
                self.event_id_conflicts,
                self.sla_events_duplicated,
                self.sla_fired_after_met,
            )
        )


def verdict(facts: LogFacts, accepted: set[tuple[str, str]]) -> LogVerdict:
    """Check the log's invariants against the messages the ingress accepted."""
    lost = sum(1 for key in accepted if not facts.appended.get(key))
    duplicated = sum(1 for ids in facts.appended.values() if len(ids) > 1)
    bad_openings = sum(1 for case in facts.cases_seen if len(facts.opened.get(case, ())) != 1)
    sla_duplicated = sum(len(ids) - 1 for ids in facts.sla_fired.values() if len(ids) > 1)
    after_met = 0
    for case_id, _kind, clock_run, due in facts.sla_due.values():
        met = facts.met_at.get((case_id, clock_run))
        if met is not None and met < due:
            after_met += 1
    return LogVerdict(
        lost=lost,
        duplicated=duplicated,
        cases_without_one_opening=bad_openings,
        event_id_conflicts=len(facts.conflicts),
        sla_events_duplicated=sla_duplicated,
        sla_fired_after_met=after_met,
        conflict_examples=tuple(facts.conflicts[:5]),
    )
