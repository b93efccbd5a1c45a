"""Every worker follows the compacted `customers.identity` topic into its `IdentityDirectory`.

Like the rules watcher, each worker reads the whole topic itself (`TopicFollower`): at
start-up to its end before stage A runs, then in a background thread, so operators' merges
and splits and other workers' links take effect within moments everywhere.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from kafkaio.follower import OnPoison, TopicFollower
from schemas import IdentityRecord
from streams.identity import IdentityDirectory

log = logging.getLogger(__name__)


class IdentityWatcher:
    """Feeds a directory from the identity topic: `load_current` once, then `start`."""

    def __init__(
        self,
        connection: Mapping[str, str | int | float | bool],
        topic: str,
        directory: IdentityDirectory,
        on_poison: OnPoison | None = None,
    ) -> None:
        self._topic = topic
        self.directory = directory
        self._follower = TopicFollower(connection, topic, "identity-watch", on_poison)

    def load_current(self, timeout_seconds: float = 10.0) -> int:
        """Read the topic to its end (at start-up); returns how many records were applied."""
        return self._follower.read_to_end(self._accept, timeout_seconds)

    def start(self) -> None:
        """Follow new records in the background."""
        self._follower.start(self._accept)

    def stop(self) -> None:
        """Stop following and close the consumer."""
        self._follower.stop()

    def _accept(self, raw: bytes) -> bool:
        """Apply one decision; an invalid record raises and the follower sets it aside."""
        self.directory.apply(IdentityRecord.model_validate_json(raw))
        return True
