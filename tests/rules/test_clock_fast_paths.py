"""The clock engine's fast paths give exactly what the straightforward computation gives.

Stage C computes deadlines on microseconds with remembered sums, reads local dates off
remembered offset stretches, and remembers texts and policies (issue 13). Each test here
restates the plain computation (as the code read before those paths) and compares, over
many calendars and zones (with holidays and daylight-saving changes), start times to the
microsecond, targets, pauses and warning shares: any difference fails.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rules import compile_sources
from rules._clock_runs import ClockPolicy, span_text
from rules._clock_state import iso
from rules._decision import DueTimes, due_at_text
from rules._localtime import ONE_US, from_us, to_us
from rules._sla_policy import SlaPolicy, deadlines, due_at
from rules.calendar import BusinessCalendar, Duration
from schemas import Priority
from tests.rules.test_calendar_properties import (
    CALENDARS,
    PROPERTY_SETTINGS,
    calendar_names,
    microsecond_instants,
)

ZONES = sorted({calendar.timezone for calendar in CALENDARS.values()} | {"Pacific/Apia"})

durations = st.builds(
    Duration,
    open_time=st.one_of(
        st.integers(0, 12 * 3600), st.integers(0, 3 * 7 * 86400), st.sampled_from([0, 1800, 28800])
    ).map(lambda s: timedelta(seconds=s)),
    open_days=st.one_of(st.just(0), st.integers(0, 6)),
    open_weeks=st.one_of(st.just(0), st.integers(0, 2)),
)
paused_totals = st.one_of(
    st.just(timedelta(0)), st.integers(1, 5 * 86400 * 10**6).map(lambda us: us * ONE_US)
)
warn_shares = st.one_of(st.sampled_from([0.5, 0.75, 0.8, 0.9, 1.0]), st.floats(0.01, 1.0))


def plain_calendar(calendar: BusinessCalendar) -> BusinessCalendar:
    """A new calendar like `calendar` that reads local dates straight from the zone."""
    fresh = BusinessCalendar(calendar.timezone, calendar.hours, calendar.holidays)
    local = fresh._local
    local.local_date = lambda instant: from_us(instant).astimezone(local.zone).date()  # type: ignore[method-assign]
    return fresh


def plain_add(
    calendar: BusinessCalendar, start: datetime, duration: Duration | timedelta
) -> datetime:
    """`BusinessCalendar.add` as it read before the microsecond paths and their cache."""
    instant = to_us(start)
    if isinstance(duration, timedelta):
        if duration < timedelta(0):
            raise ValueError(f"durations cannot be negative: {duration!r}")
        return from_us(
            calendar._add_open_time(instant, duration // ONE_US) if duration else instant
        )
    amount = Duration.of(duration)
    if amount.is_zero:
        return from_us(instant)
    days = amount.open_days + amount.open_weeks * calendar.hours.open_weekdays
    if days:
        instant = calendar._add_days(instant, days)
    if amount.open_time:
        instant = calendar._add_open_time(instant, amount.open_time // ONE_US)
    return from_us(instant)


def plain_deadlines(
    calendar: BusinessCalendar,
    warn_at: float,
    started_at: datetime,
    target: Duration,
    paused_total: timedelta,
) -> tuple[datetime, datetime]:
    """`deadlines` as it read before: datetimes and timedeltas all the way."""
    due = plain_add(calendar, started_at, target)
    if paused_total:
        due = plain_add(calendar, due, paused_total)
    unpaused_due = plain_add(calendar, started_at, target) if paused_total else due
    target_open_time = calendar.elapsed(started_at, unpaused_due)
    warn_offset = timedelta(seconds=int(target_open_time.total_seconds() * warn_at))
    base_warn = plain_add(calendar, started_at, warn_offset)
    return min(plain_add(calendar, base_warn, paused_total), due), due


def policy(calendar: BusinessCalendar, warn_at: float) -> SlaPolicy:
    return SlaPolicy("p", "c", calendar, {}, warn_at=warn_at)


@PROPERTY_SETTINGS
@given(calendar_names, microsecond_instants, durations, paused_totals, warn_shares)
def test_deadlines_match_the_plain_computation(
    name: str, start: datetime, target: Duration, paused: timedelta, warn_at: float
) -> None:
    calendar = CALENDARS[name]
    expected = plain_deadlines(plain_calendar(calendar), warn_at, start, target, paused)
    sla = policy(calendar, warn_at)
    assert deadlines(sla, start, target, paused) == expected
    # again, now from the remembered sums, and as the decision's due time reads it
    assert deadlines(sla, start, target, paused) == expected
    assert due_at(sla, start, target, paused) == expected[1]
    assert all(moment.tzinfo is UTC for moment in expected)


@PROPERTY_SETTINGS
@given(calendar_names, microsecond_instants, durations)
def test_due_at_first_then_deadlines_from_a_zone_other_than_utc(
    name: str, start: datetime, target: Duration
) -> None:
    calendar = CALENDARS[name]
    local_start = start.astimezone(ZoneInfo("America/New_York"))
    expected = plain_deadlines(plain_calendar(calendar), 0.75, start, target, timedelta(0))
    sla = policy(calendar, 0.75)
    assert due_at(sla, local_start, target) == expected[1]
    assert deadlines(sla, local_start, target, timedelta(0)) == expected


@PROPERTY_SETTINGS
@given(calendar_names, microsecond_instants, durations)
def test_add_matches_the_plain_computation(name: str, start: datetime, amount: Duration) -> None:
    calendar = CALENDARS[name]
    expected = plain_add(plain_calendar(calendar), start, amount)
    assert calendar.add(start, amount) == expected
    assert calendar.add(start, amount) == expected
    assert from_us(calendar.add_us(to_us(start), amount)) == expected


def test_a_negative_pause_is_refused_as_before() -> None:
    sla = policy(CALENDARS["berlin-office"], 0.75)
    start = datetime(2026, 3, 2, 9, tzinfo=UTC)
    with pytest.raises(ValueError, match="durations cannot be negative"):
        deadlines(sla, start, Duration(open_time=timedelta(hours=1)), timedelta(seconds=-1))
    with pytest.raises(ValueError, match="naive datetime"):
        deadlines(sla, start.replace(tzinfo=None), Duration(), timedelta(0))


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(ZONES), microsecond_instants)
def test_local_date_matches_the_zone(zone: str, moment: datetime) -> None:
    calendar = BusinessCalendar(zone)
    instant = to_us(moment)
    assert calendar._local.local_date(instant) == moment.astimezone(ZoneInfo(zone)).date()


@pytest.mark.parametrize("zone", ZONES)
def test_local_date_matches_the_zone_every_quarter_hour_of_2026(zone: str) -> None:
    calendar = BusinessCalendar(zone)
    tz = ZoneInfo(zone)
    start = to_us(datetime(2026, 1, 1, tzinfo=UTC))
    quarter = 15 * 60 * 10**6
    for step in range(366 * 96):
        for instant in (start + step * quarter, start + step * quarter - 1):
            assert calendar._local.local_date(instant) == from_us(instant).astimezone(tz).date()


@settings(max_examples=200, deadline=None)
@given(microsecond_instants, st.sampled_from(ZONES))
def test_iso_texts_match_the_plain_formatting(moment: datetime, zone: str) -> None:
    local = moment.astimezone(ZoneInfo(zone))
    plain = moment.astimezone(UTC).isoformat()[:-6] + "Z"
    assert iso(local) == plain  # possibly remembered from the UTC twin, or the other way
    assert iso(moment) == plain
    up = moment.astimezone(UTC)
    if up.microsecond:
        up += timedelta(microseconds=1_000_000 - up.microsecond)
    assert due_at_text(local) == due_at_text(moment) == up.isoformat()[:19] + "Z"


@settings(max_examples=200, deadline=None)
@given(durations, st.integers(0, 10**12))
def test_spelled_durations_match_the_plain_spelling(duration: Duration, span_us: int) -> None:
    def plain(amount: Duration) -> str:
        seconds = int(amount.open_time.total_seconds())
        hours, rest = divmod(seconds, 3600)
        minutes, seconds = divmod(rest, 60)
        units = zip(
            (amount.open_weeks, amount.open_days, hours, minutes, seconds), "wdhms", strict=True
        )
        return "".join(f"{value}{unit}" for value, unit in units if value) or "0s"

    assert duration.describe() == str(duration) == plain(duration)
    span = timedelta(microseconds=span_us)
    whole = span - span % timedelta(seconds=1)
    assert span_text(span) == plain(Duration(open_time=whole))


RULES = """
version: 1
calendars: {office: {timezone: Europe/Berlin, hours: {mon-fri: ["08:00-18:00"]}}}
sla:
  standard:
    calendar: office
    targets: {normal: {first_response: %s}}
escalations:
  standard: [{on: breach, queue: tier2}]
queues: {general: {}, tier2: {}}
routes: {queue: general, priority: normal, sla: standard, escalation: standard}
"""


def test_clock_policies_are_built_once_per_rule_set_and_never_shared() -> None:
    first = compile_sources({"rules.yaml": RULES % "8h"})
    second = compile_sources({"rules.yaml": RULES % "2h"})
    policy_first = ClockPolicy.from_ruleset(first, "standard", "standard", "r")
    assert ClockPolicy.from_ruleset(first, "standard", "standard", "r") is policy_first
    assert policy_first == ClockPolicy(
        first.sla_policies["standard"], first.escalation_policies["standard"], "standard", "r"
    )
    policy_second = ClockPolicy.from_ruleset(second, "standard", "standard", "r")
    assert policy_second.sla is second.sla_policies["standard"]
    assert policy_second.target(Priority.NORMAL, "first_response") == Duration(
        open_time=timedelta(hours=2)
    )
    unknown = ClockPolicy.from_ruleset(first, "standard", "gone", None)
    assert unknown.steps == () and unknown.escalation == "gone"
    with pytest.raises(KeyError):
        ClockPolicy.from_ruleset(first, "missing")


def test_due_times_items_are_the_computed_times() -> None:
    computed = {
        "first_response": datetime(2026, 1, 2, tzinfo=UTC),
        "resolution": datetime(2026, 1, 9, tzinfo=UTC),
    }
    calls: list[int] = []

    def compute() -> dict[str, datetime]:
        calls.append(1)
        return dict(computed)

    due = DueTimes(compute)
    assert list(due.items()) == list(computed.items())
    assert dict(due) == computed and len(due) == 2 and due["resolution"] == computed["resolution"]
    assert len(calls) == 1


def test_local_dates_never_run_backwards_in_the_zones_tested() -> None:
    # local_date's stretches rely on this (as the whole module does)
    for zone in ZONES:
        tz = ZoneInfo(zone)
        moment = datetime(2026, 1, 1, tzinfo=UTC)
        previous = moment.astimezone(tz).date()
        while moment < datetime(2028, 1, 1, tzinfo=UTC):
            moment += timedelta(minutes=30)
            shown = moment.astimezone(tz).date()
            assert shown >= previous
            previous = shown


def test_remembered_texts_tell_apart_the_two_passes_of_a_repeated_hour() -> None:
    # 02:30 happens twice in Berlin on 2026-10-25; the two datetimes differ only in `fold`
    # and compare equal in their own zone, but they are different instants
    berlin = ZoneInfo("Europe/Berlin")
    first = datetime(2026, 10, 25, 2, 30, 0, 250_000, tzinfo=berlin)
    second = first.replace(fold=1)
    assert iso(first) == "2026-10-25T00:30:00.250000Z"
    assert iso(second) == "2026-10-25T01:30:00.250000Z"
    assert due_at_text(first) == "2026-10-25T00:30:01Z"
    assert due_at_text(second) == "2026-10-25T01:30:01Z"
