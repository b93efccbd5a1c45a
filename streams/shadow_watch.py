"""Every worker follows the compacted `rules.candidate` topic: the shadow rule set, or none.

Like the active set's hot reload (`streams.rules_watch`), each worker reads the whole
topic itself, compiles each record off the event loop and swaps the set stage C shadows
with between two batches. A record that does not compile is set aside by the follower
(dead-lettered) and the previous shadow stays; `record: null` stops shadowing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from kafkaio.follower import OnPoison, TopicFollower
from rules import CompiledRuleSet
from schemas import ShadowRuleSet
from streams.rules_watch import compile_record

OnShadow = Callable[[CompiledRuleSet | None], None]
"""Takes the new shadow set (None: shadowing stopped)."""


class ShadowWatcher:
    """Follows the shadow topic in a background thread and calls `on_shadow` for each record."""

    def __init__(
        self,
        connection: Mapping[str, str | int | float | bool],
        topic: str,
        on_shadow: OnShadow,
        on_poison: OnPoison | None = None,
    ) -> None:
        self._on_shadow = on_shadow
        self._follower = TopicFollower(connection, topic, "shadow-watch", on_poison)

    def load_current(self, timeout_seconds: float = 10.0) -> None:
        """Read the topic to its end once (at start-up), handing over the latest shadow."""
        self._follower.read_to_end(self._accept, timeout_seconds)

    def start(self) -> None:
        """Follow new records in the background."""
        self._follower.start(self._accept)

    def stop(self) -> None:
        """Stop following and close the consumer."""
        self._follower.stop()

    def _accept(self, raw: bytes) -> bool:
        published = ShadowRuleSet.model_validate_json(raw)
        record = published.record
        self._on_shadow(None if record is None else compile_record(record))
        return True
