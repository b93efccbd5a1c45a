"""Customer effort from the case log: per-case figures, repeat contacts and first-contact
resolutions, counted once in the store's transaction, exact across redelivery, restarts and
a rebuild, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from prometheus_client import CollectorRegistry
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from queues import BatchWriter, EventApplier, ProjectionMetrics, SourceRecord
from queues.effort import EffortPolicy
from queues.effort_metrics import EffortCollector
from queues.models import CaseResolutionRow, CaseRow, EffortCounterRow
from schemas import CaseEvent
from tests.queues.case_event_builders import to_bytes
from tests.queues.effort_builders import Story, days, tick

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
POLICY = EffortPolicy(repeat_window=days(7), settle_grace=timedelta(hours=1))
SETTLED = T0 + days(9)
"""Past every window and grace of resolutions made around T0."""


def project(sessions: sessionmaker[Session], events: Sequence[CaseEvent], batch: int = 500) -> None:
    """Apply events in batches of `batch`, each in one transaction, as the projection does."""
    writer = BatchWriter(sessions, ProjectionMetrics(CollectorRegistry()), EventApplier(POLICY))
    for start in range(0, len(events), batch):
        chunk = events[start : start + batch]
        writer.write(
            [SourceRecord(to_bytes(e), partition=0, offset=start + n) for n, e in enumerate(chunk)]
        )


def exposed(sessions: sessionmaker[Session]) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(EffortCollector(sessions))
    return registry


def value(registry: CollectorRegistry, name: str, **labels: str) -> float:
    return registry.get_sample_value(name, labels) or 0.0


def totals(sessions: sessionmaker[Session]) -> dict[tuple[str, str, str], int]:
    with sessions() as session:
        return {
            (row.family, row.queue, row.le): row.value
            for row in session.scalars(select(EffortCounterRow))
        }


def case_of(sessions: sessionmaker[Session], story: Story) -> CaseRow:
    with sessions() as session:
        row = session.get(CaseRow, story.case_id)
        assert row is not None
        return row


def test_one_reply_and_no_return_is_a_first_contact_resolution_once_the_window_passes(
    session_factory: sessionmaker[Session],
) -> None:
    ana = Story("ana").opens(T0).replies(T0 + timedelta(hours=1))
    ana.resolves(T0 + timedelta(hours=2))
    project(session_factory, ana.events)

    registry = exposed(session_factory)
    assert value(registry, "escalator_case_contacts_count", queue="general") == 1
    assert value(registry, "escalator_case_contacts_bucket", queue="general", le="1") == 1
    assert value(registry, "escalator_case_channel_switches_sum", queue="general") == 0
    # not judged yet: the customer may still come back within the window (shown as 0)
    assert registry.get_sample_value("escalator_cases_resolved_total", {"queue": "general"}) == 0
    assert registry.get_sample_value("escalator_repeat_contacts_total", {"queue": "general"}) == 0

    project(session_factory, tick(ana, T0 + days(7)))  # inside the window and grace
    assert value(exposed(session_factory), "escalator_cases_resolved_total", queue="general") == 0

    project(session_factory, tick(ana, SETTLED))
    registry = exposed(session_factory)
    assert value(registry, "escalator_cases_resolved_total", queue="general") == 1
    assert value(registry, "escalator_first_contact_resolved_total", queue="general") == 1
    row = case_of(session_factory, ana)
    assert (row.contacts, row.agent_replies, row.channel_switches, row.reopens) == (1, 1, 0, 0)


def test_a_customer_who_comes_back_on_another_channel_is_a_repeat_contact_in_any_order(
    session_factory: sessionmaker[Session],
) -> None:
    first = Story("bo").opens(T0).replies(T0 + timedelta(hours=1))
    first.resolves(T0 + timedelta(hours=2))
    again = Story("bo", number=2).opens(T0 + days(2), channel="sms")
    # The new case is projected before the resolution (it sits on another partition).
    project(session_factory, [*again.events, *first.events, *tick(first, SETTLED)], batch=3)

    registry = exposed(session_factory)
    assert value(registry, "escalator_repeat_contacts_total", queue="general") == 1
    assert value(registry, "escalator_cases_resolved_total", queue="general") == 1
    assert value(registry, "escalator_first_contact_resolved_total", queue="general") == 0
    assert case_of(session_factory, again).repeat_of == first.case_id


def test_a_new_case_after_the_window_is_no_repeat_and_two_replies_are_no_first_contact(
    session_factory: sessionmaker[Session],
) -> None:
    cy = Story("cy").opens(T0).replies(T0 + timedelta(hours=1)).replies(T0 + timedelta(hours=3))
    cy.resolves(T0 + timedelta(hours=4))
    later = Story("cy", number=2).opens(T0 + days(8))
    project(session_factory, [*cy.events, *later.events, *tick(cy, SETTLED)])

    registry = exposed(session_factory)
    assert value(registry, "escalator_repeat_contacts_total", queue="general") == 0
    assert value(registry, "escalator_cases_resolved_total", queue="general") == 1
    assert value(registry, "escalator_first_contact_resolved_total", queue="general") == 0


def test_a_reopened_case_counts_once_with_its_final_resolution_and_not_as_first_contact(
    session_factory: sessionmaker[Session],
) -> None:
    di = Story("di").opens(T0).replies(T0 + timedelta(hours=1)).resolves(T0 + timedelta(hours=2))
    di.reopens(T0 + days(1)).resolves(T0 + days(1) + timedelta(hours=1))
    project(session_factory, [*di.events, *tick(di, T0 + days(12))])

    registry = exposed(session_factory)
    assert value(registry, "escalator_cases_resolved_total", queue="general") == 1
    assert value(registry, "escalator_first_contact_resolved_total", queue="general") == 0
    # contacts are observed at each resolution: 1, then 2 after the reopen
    assert value(registry, "escalator_case_contacts_count", queue="general") == 2
    assert value(registry, "escalator_case_contacts_sum", queue="general") == 3
    assert case_of(session_factory, di).reopens == 1


def test_channel_switches_count_the_customer_moving_between_channels(
    session_factory: sessionmaker[Session],
) -> None:
    ed = Story("ed").opens(T0, channel="email").writes(T0 + timedelta(minutes=5), "sms")
    ed.writes(T0 + timedelta(minutes=9), "sms").writes(T0 + timedelta(minutes=20), "chat")
    ed.replies(T0 + timedelta(hours=1)).resolves(T0 + timedelta(hours=2))
    project(session_factory, ed.events)

    row = case_of(session_factory, ed)
    assert (row.contacts, row.channel_switches) == (4, 2)
    registry = exposed(session_factory)
    assert value(registry, "escalator_case_channel_switches_bucket", queue="general", le="1") == 0
    assert value(registry, "escalator_case_channel_switches_bucket", queue="general", le="2") == 1
    assert value(registry, "escalator_case_contacts_bucket", queue="general", le="+Inf") == 1


def _busy_history() -> list[CaseEvent]:
    events: list[CaseEvent] = []
    for n, customer in enumerate(("fay", "gus", "hal", "ivy")):
        start = T0 + timedelta(hours=n)
        story = Story(customer, queue="billing" if n % 2 else "general").opens(start)
        story.writes(start + timedelta(minutes=3), "chat").replies(start + timedelta(hours=1))
        story.resolves(start + timedelta(hours=2))
        events += story.events
        if n < 2:
            events += Story(customer, number=2, queue=story.queue).opens(start + days(3)).events
    return [*events, *tick(Story("clock"), T0 + days(12))]


def test_redelivery_and_a_restart_count_nothing_twice(
    session_factory: sessionmaker[Session],
) -> None:
    events = _busy_history()
    project(session_factory, events, batch=7)
    counted = totals(session_factory)
    assert counted[("cases_resolved", "general", "")] == 2

    # A restarted projection gets the uncommitted tail again, and a rebalance everything.
    project(session_factory, events[-10:], batch=4)
    project(session_factory, events, batch=50)

    assert totals(session_factory) == counted
    with session_factory() as session:
        assert all(row.settled for row in session.scalars(select(CaseResolutionRow)))


def totals_event_by_event(
    events: Sequence[CaseEvent], tmp_path_factory: object
) -> dict[tuple[str, str, str], int]:
    """The totals of these events projected one per batch into a fresh SQLite store."""
    from queues import make_engine, make_session_factory, upgrade

    url = f"sqlite:///{tmp_path_factory.mktemp('one-by-one')}/store.db"  # type: ignore[attr-defined]
    upgrade(url)
    engine = make_engine(url)
    try:
        one_by_one = make_session_factory(engine)
        project(one_by_one, events, batch=1)
        return totals(one_by_one)
    finally:
        engine.dispose()


def test_a_rebuild_in_other_batches_gives_the_same_totals(
    session_factory: sessionmaker[Session], tmp_path_factory: object
) -> None:
    events = _busy_history()
    project(session_factory, events, batch=500)
    assert totals_event_by_event(events, tmp_path_factory) == totals(session_factory)


def test_an_event_stamped_far_ahead_of_its_record_settles_nothing_early(
    session_factory: sessionmaker[Session],
) -> None:
    def written(events: Sequence[CaseEvent], at: datetime | None = None) -> None:
        writer = BatchWriter(
            session_factory, ProjectionMetrics(CollectorRegistry()), EventApplier(POLICY)
        )
        writer.write(
            [
                SourceRecord(
                    to_bytes(e),
                    partition=0,
                    offset=n,
                    timestamp_ms=int((at or e.at).timestamp() * 1000),
                )
                for n, e in enumerate(events)
            ]
        )

    jo = Story("jo").opens(T0).replies(T0 + timedelta(hours=1)).resolves(T0 + timedelta(hours=2))
    written(jo.events)
    # claims to be a month later, but was written three hours after T0
    written(tick(jo, T0 + days(30)), at=T0 + timedelta(hours=3))
    assert value(exposed(session_factory), "escalator_cases_resolved_total", queue="general") == 0

    written(tick(jo, SETTLED))
    assert value(exposed(session_factory), "escalator_cases_resolved_total", queue="general") == 1


def test_a_customer_id_at_the_contracts_bound_fits_every_effort_and_merge_row(
    session_factory: sessionmaker[Session],
) -> None:
    from queues.history import history_page
    from queues.identity_projection import apply_identity
    from schemas import IdentityKind, IdentityRecord
    from schemas.limits import MAX_ID_LENGTH

    widest = "é" * MAX_ID_LENGTH  # 2,048 bytes in UTF-8
    other = "ü" * MAX_ID_LENGTH
    first = Story(widest).opens(T0).replies(T0 + timedelta(hours=1))
    first.resolves(T0 + timedelta(hours=2))
    again = Story(other).opens(T0 + days(1))
    project(session_factory, [*first.events, *again.events, *tick(first, SETTLED)])
    with session_factory.begin() as session:
        apply_identity(
            session,
            IdentityRecord(
                kind=IdentityKind.MERGE, customer_id=other, merged_into=widest, reason="x", at=T0
            ),
        )
    with session_factory() as session:
        page = history_page(session, widest)
    assert page.customers == sorted([widest, other])
    assert len([e for e in page.entries if e["kind"] == "message"]) == 3
    # one entry a page: every cursor fits the API's limit and leads on to the next entry
    cursors, seen, cursor = [], [], None
    with session_factory() as session:
        while True:
            step = history_page(session, widest, cursor=cursor, limit=1)
            seen += step.entries
            cursor = step.next_cursor
            if cursor is None:
                break
            cursors.append(cursor)
    assert seen == page.entries
    assert max(len(c) for c in cursors) <= 8192
    assert value(exposed(session_factory), "escalator_cases_resolved_total", queue="general") == 1


def test_a_case_opened_twice_in_one_batch_is_one_repeat_contact_as_in_two_batches(
    session_factory: sessionmaker[Session], tmp_path_factory: object
) -> None:
    first = Story("dee").opens(T0).replies(T0 + timedelta(hours=1))
    first.resolves(T0 + timedelta(hours=2))
    again = Story("dee", number=2).opens(T0 + days(2))
    opening = again.events[0]
    # The worker wrote `case.opened` again after a crash, under another event id.
    twice = opening.model_copy(update={"event_id": "e" * 32})
    events = [*first.events, *again.events, twice]

    project(session_factory, events, batch=len(events))
    assert totals_event_by_event(events, tmp_path_factory) == totals(session_factory)
    assert totals(session_factory)[("repeat_contacts", "general", "")] == 1
    assert case_of(session_factory, again).repeat_of == first.case_id
