"""Hot reload: every worker follows the compacted `rules` topic and swaps its rule set.

Each worker reads the whole topic itself (no consumer group: every worker needs every
record). A record is compiled off the event loop; only a set that compiles replaces the
one in use, so an invalid set never reaches evaluation. The swap is one reference
assignment that stage C reads once per batch: it takes effect between two messages.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping

from kafkaio.follower import OnPoison, TopicFollower
from rules import CompiledRuleSet, compile_sources
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
        on_poison: OnPoison | None = None,
    ) -> None:
        self._topic = topic
        self._on_ruleset = on_ruleset
        self._follower = TopicFollower(connection, topic, "rules-watch", on_poison)
        self.latest: CompiledRuleSet | None = None

    def load_current(self, timeout_seconds: float = 10.0) -> CompiledRuleSet | None:
        """Read the topic to its end once (at start-up); the latest valid set, if any."""
        self._follower.read_to_end(lambda raw: self._accept(raw, notify=False), timeout_seconds)
        return self.latest

    def start(self) -> None:
        """Follow new records in the background."""
        self._follower.start(lambda raw: self._accept(raw, notify=True))

    def stop(self) -> None:
        """Stop following and close the consumer."""
        self._follower.stop()

    def _accept(self, raw: bytes, notify: bool) -> bool:
        """Compile one record; whatever it raises (invalid, unreadable) the follower sets aside."""
        ruleset = compile_record(RuleSetRecord.model_validate_json(raw))
        self.latest = ruleset
        if notify:
            self._on_ruleset(ruleset)
        return True
