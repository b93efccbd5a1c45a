"""The projected rows a batch holds in memory while it applies its events: plain objects.

Handlers change many fields per event; on ORM objects each construction and each
assignment goes through SQLAlchemy's instrumentation, which was half the cost of
applying an event. These are plain slotted dataclasses with the same fields as the
tables' columns (checked when this module is imported), read from and written to the
database by `WorkingSet` with Core statements.

Assign a new list or dict to change a JSON field rather than changing it in place:
`WorkingSet` tells a changed row from an unchanged one by comparing with what it loaded.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any, Generic, TypeVar

from sqlalchemy import Table

from queues.models import AssignmentRow, Base, CaseRow


@dataclass(slots=True)
class CaseValues:
    """One row of `cases` (see `CaseRow` for what each column means)."""

    case_id: str
    customer_id: str
    queue: str | None
    priority: str | None
    status: str
    tags: list[str]
    channels: list[str]
    matched: list[str]
    sla: dict[str, Any]
    rules_version: str | None
    opened_at: datetime | None
    updated_at: datetime
    last_event_at: datetime
    message_count: int
    assignee: str | None = None
    assignment_pending: bool = False
    channel: str | None = None
    sla_due_at: datetime | None = None
    contacts: int = 0
    agent_replies: int = 0
    channel_switches: int = 0
    reopens: int = 0
    resolved_at: datetime | None = None
    repeat_of: str | None = None


@dataclass(slots=True)
class AssignmentValues:
    """One row of `assignments` (see `AssignmentRow`)."""

    event_id: str
    case_id: str
    agent: str
    queue: str | None
    started_at: datetime
    started_reason: str
    accepted_at: datetime | None
    ended_at: datetime | None
    ended_reason: str | None


ValuesT = TypeVar("ValuesT", CaseValues, AssignmentValues)


class RowShape(Generic[ValuesT]):
    """How a kind of in-memory row maps onto its table."""

    def __init__(self, values: type[ValuesT], model: type[Base]) -> None:
        table = model.__table__
        assert isinstance(table, Table)
        self.table = table
        self.values_type: type[ValuesT] = values
        self.names = tuple(field.name for field in fields(values))
        self._column_keys = tuple(table.columns.keys())
        columns = set(self._column_keys)
        if set(self.names) != columns:
            raise TypeError(
                f"{values.__name__} must have one field per column of {table.name}: "
                f"missing {sorted(columns - set(self.names))}, "
                f"extra {sorted(set(self.names) - columns)}"
            )

    def from_row(self, row: Sequence[Any]) -> ValuesT:
        """The in-memory row of a database row selected as `select(self.table)`."""
        return self.values_type(**dict(zip(self._column_keys, row, strict=True)))

    def values(self, row: ValuesT) -> dict[str, Any]:
        """The row's values by column, as a bulk statement takes them."""
        return {name: getattr(row, name) for name in self.names}

    def snapshot(self, row: ValuesT) -> tuple[Any, ...]:
        """The row's values in a fixed order, to tell later whether anything changed."""
        return tuple(getattr(row, name) for name in self.names)


CASES = RowShape(CaseValues, CaseRow)
ASSIGNMENTS = RowShape(AssignmentValues, AssignmentRow)
