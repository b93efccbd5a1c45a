"""Hot reload: every worker follows the compacted `rules` topic and swaps its rule set.

Each worker reads the whole topic itself (no consumer group: every worker needs every
record). A record is compiled off the event loop; only a set that compiles replaces the
one in use, so an invalid set never reaches evaluation. The swap is one reference
assignment that stage C reads once per batch: it takes effect between two messages.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition
from pydantic import ValidationError

from rules import CompiledRuleSet, RuleSetError, compile_sources
from schemas import RuleSetRecord

log = logging.getLogger(__name__)


def compile_record(record: RuleSetRecord) -> CompiledRuleSet:
    """Compile a published rule set; referenced files come from the record itself."""

    def read_file(name: str) -> str:
        if name not in record.files:
            raise FileNotFoundError(f"{name} was not published with the rule set")
        return record.files[name]

    return compile_sources(record.sources, read_file=read_file)


class RulesWatcher:
    """Follows the rules topic in a background thread and calls `on_ruleset` for each set."""

    def __init__(
        self,
        connection: Mapping[str, str | int | float | bool],
        topic: str,
        on_ruleset: Callable[[CompiledRuleSet], None],
    ) -> None:
        self._topic = topic
        self._on_ruleset = on_ruleset
        self._consumer = Consumer(
            {
                **connection,
                "group.id": "escalator-rules-watch-unused",
                "enable.auto.commit": False,
                "enable.partition.eof": True,
            }
        )
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rules-watch", daemon=True)
        self.latest: CompiledRuleSet | None = None

    def load_current(self, timeout_seconds: float = 10.0) -> CompiledRuleSet | None:
        """Read the topic to its end once (at start-up); the latest valid set, if any."""
        metadata = self._consumer.list_topics(self._topic, timeout=timeout_seconds)
        partitions = list(metadata.topics[self._topic].partitions)
        self._consumer.assign(
            [TopicPartition(self._topic, partition, OFFSET_BEGINNING) for partition in partitions]
        )
        at_end: set[int] = set()
        while len(at_end) < len(partitions):
            message = self._consumer.poll(timeout_seconds)
            if message is None:
                break
            error = message.error()
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:
                    at_end.add(message.partition() or 0)
                continue
            self._accept(message.value(), notify=False)
        return self.latest

    def start(self) -> None:
        """Follow new records in the background."""
        self._thread.start()

    def stop(self) -> None:
        """Stop following and close the consumer."""
        self._stop.set()
        self._thread.join(timeout=5)
        self._consumer.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            message = self._consumer.poll(0.5)
            if message is None or message.error() is not None:
                continue
            self._accept(message.value(), notify=True)

    def _accept(self, raw: bytes | None, notify: bool) -> None:
        if raw is None:
            return
        try:
            ruleset = compile_record(RuleSetRecord.model_validate_json(raw))
        except (ValidationError, RuleSetError, OSError) as exc:
            log.error("ignoring an invalid rule set on %s: %s", self._topic, exc)
            return
        self.latest = ruleset
        if notify:
            self._on_ruleset(ruleset)
