"""The identity record on the compacted `customers.identity` topic: who is which customer, and why.

Keys: `handle:<kind>:<value>` for a handle linked to a customer (an email address, an
E.164 phone, a channel handle), `customer:<id>` for a customer merged into another or split
off again. Compaction keeps the latest decision per key; every record carries its reason.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime, Field

from schemas._common import Contract
from schemas.limits import MAX_ID_LENGTH, check_identifier_bytes

CustomerId = Annotated[
    str,
    Field(min_length=1, max_length=MAX_ID_LENGTH),
    AfterValidator(check_identifier_bytes),
]
"""A customer id as the case store keeps it: at most 1,024 characters and 2,048 bytes."""


class IdentityKind(StrEnum):
    """What an identity record decides."""

    LINK = "link"
    """`handle` belongs to `customer_id`."""
    MERGE = "merge"
    """`customer_id` is the same person as `merged_into`: resolve it to that one."""
    SPLIT = "split"
    """`customer_id` stands on its own again (undoes a merge of it)."""


class IdentityRecord(Contract):
    """One identity decision with its evidence; `by` says who (a worker or an operator)."""

    kind: IdentityKind
    customer_id: CustomerId
    handle: str | None = None
    merged_into: CustomerId | None = None
    reason: str
    evidence: str = ""
    by: str = "escalator-worker"
    at: AwareDatetime

    @property
    def key(self) -> bytes:
        """The record's key on the compacted topic."""
        if self.kind is IdentityKind.LINK:
            return f"handle:{self.handle}".encode()
        return f"customer:{self.customer_id}".encode()
