"""Customer effort from the case log: per-case figures, resolutions, repeat contacts, and the
running totals behind the effort metrics, all written in the projection's own transaction.

Exact across restarts: everything is stored with the events that caused it, and an event
is applied once (its id is the projection's idempotency key), so a redelivered batch
counts nothing again and a restarted projection goes on from the stored totals.

A resolution is judged when it *settles*: once the projection's event time (the latest
event time it has applied) passes the end of the repeat window plus a grace period, so
that events still on their way from other partitions are in. Only the settled verdict is
counted; it never changes afterwards. See docs/metrics.md ("Customer effort").
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import ColumnElement, Table, case, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from queues.batch_rows import CaseValues
from queues.models import CaseResolutionRow, CaseRow, EffortCounterRow
from schemas import CaseEvent, CaseEventType, CaseStatus

CONTACT_BUCKETS = (1, 2, 3, 4, 5, 7, 10, 15, 20)
"""Upper bounds of `escalator_case_contacts` (the customer's messages per resolved case)."""
SWITCH_BUCKETS = (0, 1, 2, 3, 5, 8)
"""Upper bounds of `escalator_case_channel_switches`."""
INF = "+Inf"
SETTLE_LIMIT = 2_000
"""Most resolutions one batch judges; the rest wait for the next batch (bounded queries)."""
CLOCK_SKEW = timedelta(minutes=5)
"""How far an event's time may run ahead of its record's Kafka timestamp for the clock."""


class Family(StrEnum):
    """The running totals kept in `effort_counters`, one per metric family (and the clock)."""

    CONTACTS = "case_contacts"
    CHANNEL_SWITCHES = "case_channel_switches"
    REPEAT_CONTACTS = "repeat_contacts"
    FIRST_CONTACT_RESOLVED = "first_contact_resolved"
    CASES_RESOLVED = "cases_resolved"
    EVENT_CLOCK = "event_clock"
    """Not a metric: the latest event time applied, in microseconds since the epoch."""


@dataclass(frozen=True)
class EffortPolicy:
    """How effort is judged: the repeat-contact window and the grace before a verdict."""

    repeat_window: timedelta = timedelta(days=7)
    """A new case of the customer this long after a resolution is a repeat contact."""
    settle_grace: timedelta = timedelta(hours=1)
    """How long after the window a resolution waits for late events before it is judged."""


@dataclass(frozen=True)
class _Resolved:
    event_id: str
    case_id: str
    customer_id: str
    queue: str
    at: datetime
    contacts: int
    channel_switches: int
    agent_replies: int
    reopens: int


@dataclass(frozen=True)
class _Reopened:
    case_id: str
    at: datetime


@dataclass(frozen=True)
class _Opened:
    case: CaseValues
    """The batch's row of the case: what `finish` writes is what the store then holds."""


_Fact = _Resolved | _Reopened | _Opened

Key = tuple[str, str, str]
"""(family, queue, le) of one running total."""


def count_message(case_row: CaseValues, direction: str, channel: str) -> None:
    """Count a message new to the case: a contact (and maybe a channel switch) or a reply.

    Call it before the case's `channel` (the latest customer channel) moves to this one.
    """
    if direction == "inbound":
        if case_row.channel is not None and case_row.channel != channel:
            case_row.channel_switches = (case_row.channel_switches or 0) + 1
        case_row.contacts = (case_row.contacts or 0) + 1
    elif direction == "outbound":
        case_row.agent_replies = (case_row.agent_replies or 0) + 1


@dataclass
class EffortBatch:
    """What one batch of events did to customer effort, written by `finish` before commit."""

    policy: EffortPolicy
    latest: datetime | None = None
    facts: list[_Fact] = field(default_factory=list)
    written_at: int | None = None
    """The Kafka timestamp (ms) of the record being applied, when known: the event time
    the batch moves the clock to is never later than this plus `CLOCK_SKEW`, so one event
    stamped far in the future cannot settle every resolution before its time."""

    def note(self, case_row: CaseValues | None, event: CaseEvent) -> None:
        """Take in one newly recorded event (after it was applied to its case)."""
        at = event.at
        if self.written_at is not None and self.written_at > 0:  # -1: no timestamp
            at = min(at, _EPOCH + timedelta(milliseconds=self.written_at) + CLOCK_SKEW)
        self.latest = at if self.latest is None else max(self.latest, at)
        if case_row is None:
            return
        if event.type == CaseEventType.CASE_OPENED.value:
            self.facts.append(_Opened(case_row))
        elif event.type == CaseEventType.CASE_RESOLVED.value:
            if case_row.status == CaseStatus.RESOLVED.value:
                return  # resolved already: the same resolution
            case_row.resolved_at = event.at
            self.facts.append(
                _Resolved(
                    event_id=event.event_id,
                    case_id=case_row.case_id,
                    customer_id=case_row.customer_id,
                    queue=case_row.queue or "",
                    at=event.at,
                    contacts=case_row.contacts or 0,
                    channel_switches=case_row.channel_switches or 0,
                    agent_replies=case_row.agent_replies or 0,
                    reopens=case_row.reopens or 0,
                )
            )
        elif event.type == CaseEventType.CASE_REOPENED.value:
            case_row.resolved_at = None
            case_row.reopens = (case_row.reopens or 0) + 1
            self.facts.append(_Reopened(case_row.case_id, event.at))

    def finish(self, session: Session) -> None:
        """Record resolutions and repeat contacts, settle what is due, add to the totals.

        A few set-wise queries per batch, whatever its size: the resolutions it made, the
        reopens, the new cases, then the settlement.
        """
        if self.latest is None:
            return
        totals: Counter[Key] = Counter()
        resolved = [fact for fact in self.facts if isinstance(fact, _Resolved)]
        rows = [self._resolution(fact, totals) for fact in resolved]
        session.add_all(rows)
        _reopened(session, [fact for fact in self.facts if isinstance(fact, _Reopened)])
        _opened(session, [fact for fact in self.facts if isinstance(fact, _Opened)], totals)
        _came_back_before(session, rows, totals)
        _add(session, Counter({(Family.EVENT_CLOCK.value, "", ""): _micros(self.latest)}))
        clock = _clock(session)
        if clock is not None:
            settle(session, clock, totals)
        _add(session, totals)

    def _resolution(self, fact: _Resolved, totals: Counter[Key]) -> CaseResolutionRow:
        until = fact.at + self.policy.repeat_window
        _observe(totals, Family.CONTACTS, fact.queue, fact.contacts, CONTACT_BUCKETS)
        _observe(totals, Family.CHANNEL_SWITCHES, fact.queue, fact.channel_switches, SWITCH_BUCKETS)
        return CaseResolutionRow(
            event_id=fact.event_id,
            case_id=fact.case_id,
            customer_id=fact.customer_id,
            queue=fact.queue,
            resolved_at=fact.at,
            repeat_until=until,
            settles_at=until + self.policy.settle_grace,
            contacts=fact.contacts,
            channel_switches=fact.channel_switches,
            agent_replies=fact.agent_replies,
            reopens=fact.reopens,
            reopened_at=None,
            settled=False,
            first_contact=None,
        )


def _reopened(session: Session, facts: list[_Reopened]) -> None:
    """The case's unsettled resolutions before a reopen were not the end of it."""
    if not facts:
        return
    rows = session.scalars(
        select(CaseResolutionRow).where(
            CaseResolutionRow.case_id.in_({fact.case_id for fact in facts}),
            CaseResolutionRow.settled.is_(False),
            CaseResolutionRow.reopened_at.is_(None),
        )
    ).all()
    for fact in facts:
        for row in rows:
            if (
                row.case_id == fact.case_id
                and row.reopened_at is None
                and row.resolved_at <= fact.at
            ):
                row.reopened_at = fact.at


def _opened(session: Session, facts: list[_Opened], totals: Counter[Key]) -> None:
    """A new case within the repeat window after one of the customer's resolutions repeats it
    (the latest such resolution).

    The cases are the batch's own rows, which the projection has just written as they are:
    no query reads them back. Each case counts once, however many `case.opened` it got.
    """
    unique = {fact.case.case_id: fact.case for fact in facts}  # one row per case, in order
    new_cases = [
        case for case in unique.values() if case.repeat_of is None and case.opened_at is not None
    ]
    if not new_cases:
        return
    earliest = min(c.opened_at for c in new_cases if c.opened_at is not None)
    candidates = session.scalars(
        select(CaseResolutionRow)
        .where(
            CaseResolutionRow.customer_id.in_({c.customer_id for c in new_cases}),
            CaseResolutionRow.repeat_until >= earliest,
        )
        .order_by(CaseResolutionRow.resolved_at.desc(), CaseResolutionRow.event_id)
    ).all()
    for new_case in new_cases:
        earlier = _repeated(
            new_case.case_id, new_case.customer_id, new_case.opened_at, candidates, totals
        )
        if earlier is not None:
            new_case.repeat_of = earlier
            session.execute(
                update(CaseRow)
                .where(CaseRow.case_id == new_case.case_id)
                .values(repeat_of=earlier)
                .execution_options(synchronize_session=False)
            )


def _repeated(
    case_id: str,
    customer_id: str,
    opened_at: datetime | None,
    newest_first: Sequence[CaseResolutionRow],
    totals: Counter[Key],
) -> str | None:
    """The case a case opened at `opened_at` repeats: the latest of these resolutions its
    opening falls after, within that resolution's window; its repeat contact is counted for
    that resolution's queue."""
    earlier = next(
        (
            row
            for row in newest_first
            if row.customer_id == customer_id
            and row.case_id != case_id
            and opened_at is not None
            and row.resolved_at < opened_at <= row.repeat_until
        ),
        None,
    )
    if earlier is None:
        return None
    totals[(Family.REPEAT_CONTACTS.value, earlier.queue, "")] += 1
    return earlier.case_id


def _came_back_before(
    session: Session, resolutions: list[CaseResolutionRow], totals: Counter[Key]
) -> None:
    """New cases projected before the resolution they repeat (another partition): whichever
    of the two the projection applies second finds the other."""
    if not resolutions:
        return
    later = session.scalars(
        select(CaseRow)
        .where(
            CaseRow.customer_id.in_({row.customer_id for row in resolutions}),
            CaseRow.opened_at > min(row.resolved_at for row in resolutions),
            CaseRow.opened_at <= max(row.repeat_until for row in resolutions),
            CaseRow.repeat_of.is_(None),
        )
        .order_by(CaseRow.opened_at, CaseRow.case_id)
    ).all()
    newest_first = sorted(resolutions, key=lambda row: row.resolved_at, reverse=True)
    for repeat in later:
        earlier = _repeated(
            repeat.case_id, repeat.customer_id, repeat.opened_at, newest_first, totals
        )
        if earlier is not None:
            repeat.repeat_of = earlier


def settle(session: Session, clock: datetime, totals: Counter[Key]) -> None:
    """Judge every resolution whose window (and grace) the event time has passed, once."""
    due = session.scalars(
        select(CaseResolutionRow)
        .where(CaseResolutionRow.settled.is_(False), CaseResolutionRow.settles_at <= clock)
        .order_by(CaseResolutionRow.settles_at, CaseResolutionRow.event_id)
        .limit(SETTLE_LIMIT)
    ).all()
    if not due:
        return
    came_back = _came_back(session, due)
    verdicts: dict[bool, list[CaseResolutionRow]] = {True: [], False: []}
    for row in due:
        reopened = row.reopened_at is not None and row.reopened_at <= row.repeat_until
        first_contact = (
            row.agent_replies == 1
            and row.reopens == 0
            and not reopened
            and row.event_id not in came_back
        )
        verdicts[first_contact].append(row)
    for first_contact, rows in verdicts.items():
        if not rows:
            continue
        # Conditional, so two projections settling at once count a resolution once.
        claimed = set(
            session.scalars(
                update(CaseResolutionRow)
                .where(
                    CaseResolutionRow.event_id.in_([row.event_id for row in rows]),
                    CaseResolutionRow.settled.is_(False),
                )
                .values(settled=True, first_contact=first_contact)
                .returning(CaseResolutionRow.event_id)
                .execution_options(synchronize_session=False)
            )
        )
        for row in rows:
            reopened = row.reopened_at is not None and row.reopened_at <= row.repeat_until
            if row.event_id not in claimed or reopened:
                continue  # settled elsewhere, or not the case's last resolution after all
            totals[(Family.CASES_RESOLVED.value, row.queue, "")] += 1
            if first_contact:
                totals[(Family.FIRST_CONTACT_RESOLVED.value, row.queue, "")] += 1


def _came_back(session: Session, due: Sequence[CaseResolutionRow]) -> set[str]:
    """The resolutions whose customer opened another case within their repeat window."""
    opened = session.execute(
        select(CaseRow.customer_id, CaseRow.case_id, CaseRow.opened_at).where(
            CaseRow.customer_id.in_({row.customer_id for row in due}),
            CaseRow.opened_at > min(row.resolved_at for row in due),
            CaseRow.opened_at <= max(row.repeat_until for row in due),
        )
    ).all()
    return {
        row.event_id
        for row in due
        for customer_id, case_id, opened_at in opened
        if customer_id == row.customer_id
        and case_id != row.case_id
        and opened_at is not None
        and row.resolved_at < opened_at <= row.repeat_until
    }


def _observe(
    totals: Counter[Key], family: Family, queue: str, value: int, buckets: Iterable[int]
) -> None:
    """One histogram observation: its bucket (not cumulative), the sum and the count."""
    bucket = next((str(bound) for bound in buckets if value <= bound), INF)
    totals[(family.value, queue, bucket)] += 1
    totals[(family.value, queue, "sum")] += value
    totals[(family.value, queue, "count")] += 1


def _add(session: Session, totals: Counter[Key]) -> None:
    """Add to the running totals (the clock row keeps the larger value), in key order."""
    if not totals:
        return
    table = Table("effort_counters", EffortCounterRow.metadata)
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    for (family, queue, le), amount in sorted(totals.items()):
        statement = insert(table).values(family=family, queue=queue, le=le, value=amount)
        value: ColumnElement[Any]
        if family == Family.EVENT_CLOCK.value:
            value = case(
                (statement.excluded.value > table.c.value, statement.excluded.value),
                else_=table.c.value,
            )
        else:
            value = table.c.value + statement.excluded.value
        session.execute(
            statement.on_conflict_do_update(
                index_elements=["family", "queue", "le"], set_={"value": value}
            )
        )


def _clock(session: Session) -> datetime | None:
    micros = session.scalar(
        select(EffortCounterRow.value).where(
            EffortCounterRow.family == Family.EVENT_CLOCK.value,
            EffortCounterRow.queue == "",
            EffortCounterRow.le == "",
        )
    )
    if micros is None:
        return None
    return _EPOCH + timedelta(microseconds=int(micros))


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _micros(at: datetime) -> int:
    delta = at - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
