"""What a write to Kafka can end in, besides success."""

from __future__ import annotations

from collections.abc import Mapping


class PublishError(Exception):
    """The broker did not acknowledge a record; nothing may be reported as accepted.

    A plain PublishError is transient (broker down, timeout): the same write may succeed
    when tried again.
    """


class RecordsRejectedError(PublishError):
    """Some records can never be written as they are (too large, invalid topic name).

    Retrying them is pointless: the caller dead-letters them and goes on. `rejected` maps
    the index of each such record in the batch to the reason; the other records of the
    batch were acknowledged (or, when `transient` is also set, need writing again).
    """

    def __init__(self, rejected: Mapping[int, str], transient: str | None = None) -> None:
        self.rejected = dict(rejected)
        self.transient = transient
        reasons = "; ".join(f"#{i}: {reason}" for i, reason in sorted(self.rejected.items()))
        super().__init__(f"records rejected ({reasons})")
