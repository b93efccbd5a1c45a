"""Property tests of business-time arithmetic against the definitions in docs/calendars.md.

The oracle `open_on_the_wall` restates the rule independently of the implementation:
an instant is open when its local date is not a holiday and the wall clock shows a
time inside one of that weekday's ranges.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rules.calendar import ALWAYS, BusinessCalendar, Duration, parse_holidays, parse_hours

CHRISTMAS = parse_holidays(["2026-12-24", "2026-12-25", "2026-12-26", "2027-12-24"])
CALENDARS = {
    "berlin-office": BusinessCalendar(
        "Europe/Berlin", parse_hours({"mon-fri": ["08:00-18:00"]}), CHRISTMAS
    ),
    "berlin-lunch-and-saturday": BusinessCalendar(
        "Europe/Berlin",
        parse_hours({"mon-fri": ["08:00-12:00", "13:00-18:00"], "sat": "10:00-14:00"}),
    ),
    "berlin-night": BusinessCalendar(
        "Europe/Berlin",
        parse_hours({"mon-sat": ["00:30-03:30", "22:00-24:00"], "sun": ["00:00-24:00"]}),
        CHRISTMAS,
    ),
    "berlin-24x7-holidays": BusinessCalendar("Europe/Berlin", None, CHRISTMAS),
    "new-york-office": BusinessCalendar(
        "America/New_York", parse_hours({"mon-fri": ["09:00-17:00"]})
    ),
    "new-york-nights": BusinessCalendar(
        "America/New_York", parse_hours({"sun-thu": ["00:00-03:00", "20:00-24:00"]})
    ),
    "kolkata": BusinessCalendar("Asia/Kolkata", parse_hours({"mon-fri": ["09:30-18:00"]})),
    # Lord Howe Island moves its clock by 30 minutes at 02:00 local time.
    "lord-howe": BusinessCalendar(
        "Australia/Lord_Howe", parse_hours({"mon-sun": ["01:00-03:00", "09:00-17:00"]})
    ),
    # Santiago and Havana change their clocks at midnight, so some local days start at 01:00.
    "santiago-24x7": BusinessCalendar(
        "America/Santiago", None, parse_holidays(["2026-09-06", "2026-12-25"])
    ),
    "havana-nights": BusinessCalendar(
        "America/Havana", parse_hours({"sat-sun": ["00:00-02:00", "22:00-24:00"]})
    ),
    "always": ALWAYS,
}
WITHOUT_HOLIDAYS = {
    name: BusinessCalendar(cal.timezone, cal.hours) for name, cal in CALENDARS.items()
}

LOW = datetime(2026, 1, 1, tzinfo=UTC)
HIGH = datetime(2027, 12, 1, tzinfo=UTC)
CLOCK_CHANGES = [  # instants at which some zone above changes its UTC offset
    datetime(2026, 3, 8, 7, tzinfo=UTC),
    datetime(2026, 3, 29, 1, tzinfo=UTC),
    datetime(2026, 4, 4, 15, tzinfo=UTC),  # Lord Howe, back to +10:30
    datetime(2026, 10, 3, 15, 30, tzinfo=UTC),  # Lord Howe, forward to +11
    datetime(2026, 10, 25, 1, tzinfo=UTC),
    datetime(2026, 11, 1, 6, tzinfo=UTC),
    datetime(2027, 3, 28, 1, tzinfo=UTC),
    datetime(2026, 3, 8, 5, tzinfo=UTC),  # Havana, 00:00 -> 01:00
    datetime(2026, 11, 1, 5, tzinfo=UTC),  # Havana, 01:00 -> 00:00
    datetime(2026, 4, 5, 3, tzinfo=UTC),  # Santiago, Sunday 00:00 -> Saturday 23:00
    datetime(2026, 9, 6, 4, tzinfo=UTC),  # Santiago, 00:00 -> 01:00
]

PROPERTY_SETTINGS = settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)

calendar_names = st.sampled_from(sorted(CALENDARS))
anywhere = st.integers(0, int((HIGH - LOW).total_seconds())).map(
    lambda s: LOW + timedelta(seconds=s)
)
near_clock_change = st.builds(
    lambda change, seconds: change + timedelta(seconds=seconds),
    st.sampled_from(CLOCK_CHANGES),
    st.one_of(st.integers(-6 * 3600, 6 * 3600), st.integers(-3 * 86400, 3 * 86400)),
)
holiday_season = st.integers(0, 20 * 86400).map(
    lambda s: datetime(2026, 12, 15, tzinfo=UTC) + timedelta(seconds=s)
)
instants = st.one_of(anywhere, near_clock_change, holiday_season)
microsecond_instants = st.builds(
    lambda t, us: t + timedelta(microseconds=us), instants, st.integers(0, 999_999)
)
open_times = st.one_of(st.integers(0, 4 * 3600), st.integers(0, 3 * 7 * 86400), st.just(0)).map(
    lambda s: timedelta(seconds=s)
)
day_counts = st.integers(0, 12)


def open_on_the_wall(calendar: BusinessCalendar, moment: datetime) -> bool:
    """The definition: local date not a holiday, wall time inside one of the day's ranges."""
    local = moment.astimezone(ZoneInfo(calendar.timezone))
    if local.date() in calendar.holidays:
        return False
    minute = local.hour * 60 + local.minute + (local.second + local.microsecond / 1e6) / 60
    return any(
        r.start_minute <= minute < r.end_minute for r in calendar.hours.ranges(local.weekday())
    )


@PROPERTY_SETTINGS
@given(calendar_names, microsecond_instants)
def test_is_open_matches_the_wall_clock_definition(name: str, moment: datetime) -> None:
    assert CALENDARS[name].is_open(moment) == open_on_the_wall(CALENDARS[name], moment)


@settings(max_examples=60, deadline=None)
@given(calendar_names, instants, st.integers(1, 6 * 60))
def test_elapsed_counts_open_minutes(name: str, start: datetime, minutes: int) -> None:
    calendar = CALENDARS[name]
    start = start.replace(second=0)
    open_minutes = sum(
        open_on_the_wall(calendar, start + timedelta(minutes=m)) for m in range(minutes)
    )
    end = start + timedelta(minutes=minutes)
    assert calendar.elapsed(start, end) == timedelta(minutes=open_minutes)


@PROPERTY_SETTINGS
@given(calendar_names, microsecond_instants, open_times)
def test_elapsed_inverts_add(name: str, start: datetime, amount: timedelta) -> None:
    calendar = CALENDARS[name]
    due = calendar.add(start, amount)
    assert due >= start
    assert calendar.elapsed(start, due) == amount
    if amount:  # the deadline is the earliest instant with that much open time behind it
        one = timedelta(microseconds=1)
        assert calendar.elapsed(start, due - one) == amount - one


@PROPERTY_SETTINGS
@given(calendar_names, instants, open_times, open_times)
def test_add_composes(name: str, start: datetime, first: timedelta, second: timedelta) -> None:
    calendar = CALENDARS[name]
    assert calendar.add(calendar.add(start, first), second) == calendar.add(start, first + second)


@PROPERTY_SETTINGS
@given(calendar_names, instants, instants, open_times, day_counts)
def test_add_is_monotonic_in_start(
    name: str, a: datetime, b: datetime, amount: timedelta, days: int
) -> None:
    calendar = CALENDARS[name]
    early, late = min(a, b), max(a, b)
    assert calendar.add(early, amount) <= calendar.add(late, amount)
    duration = Duration(open_time=amount, open_days=days)
    assert calendar.add(early, duration) <= calendar.add(late, duration)


@PROPERTY_SETTINGS
@given(calendar_names, instants, open_times, open_times, day_counts, day_counts)
def test_add_is_monotonic_in_duration(
    name: str, start: datetime, a: timedelta, b: timedelta, days_a: int, days_b: int
) -> None:
    calendar = CALENDARS[name]
    assert calendar.add(start, min(a, b)) <= calendar.add(start, max(a, b))
    fewer = Duration(open_days=min(days_a, days_b))
    more = Duration(open_days=max(days_a, days_b))
    assert calendar.add(start, fewer) <= calendar.add(start, more)


@PROPERTY_SETTINGS
@given(calendar_names, instants, instants, instants)
def test_elapsed_is_additive(name: str, a: datetime, b: datetime, c: datetime) -> None:
    calendar = CALENDARS[name]
    first, middle, last = sorted((a, b, c))
    assert calendar.elapsed(first, last) == (
        calendar.elapsed(first, middle) + calendar.elapsed(middle, last)
    )
    assert calendar.elapsed(last, first) == timedelta(0)


@PROPERTY_SETTINGS
@given(calendar_names, instants, instants)
def test_holidays_contribute_nothing(name: str, a: datetime, b: datetime) -> None:
    calendar, plain = CALENDARS[name], WITHOUT_HOLIDAYS[name]
    start, end = min(a, b), max(a, b)
    zone = ZoneInfo(calendar.timezone)
    holiday_time = timedelta(0)
    for holiday in calendar.holidays:
        day_start = datetime.combine(holiday, time(), tzinfo=zone)
        day_end = datetime.combine(holiday + timedelta(days=1), time(), tzinfo=zone)
        holiday_time += plain.elapsed(max(start, day_start), min(end, day_end))
    assert calendar.elapsed(start, end) == plain.elapsed(start, end) - holiday_time


@PROPERTY_SETTINGS
@given(calendar_names, microsecond_instants)
def test_next_open(name: str, moment: datetime) -> None:
    calendar = CALENDARS[name]
    opening = calendar.next_open(moment)
    assert opening >= moment
    assert calendar.is_open(opening)
    assert calendar.elapsed(moment, opening) == timedelta(0)
    if calendar.is_open(moment):
        assert opening == moment


@PROPERTY_SETTINGS
@given(microsecond_instants, open_times, day_counts, st.integers(0, 3))
def test_always_is_plain_utc_arithmetic(
    start: datetime, amount: timedelta, days: int, weeks: int
) -> None:
    end = start + amount
    assert ALWAYS.add(start, amount) == end
    assert ALWAYS.elapsed(start, end) == amount
    assert ALWAYS.is_open(start)
    assert ALWAYS.next_open(start) == start
    duration = Duration(open_time=amount, open_days=days, open_weeks=weeks)
    assert ALWAYS.add(start, duration) == end + timedelta(days=days + 7 * weeks)


def nth_open_day(calendar: BusinessCalendar, day: date, count: int) -> date:
    while count:
        day += timedelta(days=1)
        if calendar.hours.ranges(day.weekday()) and day not in calendar.holidays:
            count -= 1
    return day


def wall_time_reached(moment: datetime) -> timedelta:
    """Oracle: the latest wall time shown on `moment`'s date up to `moment`, since midnight.

    Only differs from `moment`'s own wall time in the second pass of a repeated (fall-back)
    stretch; it can be 24:00 where the clock went back from midnight.
    """
    midnight = datetime.combine(moment.date(), time())
    latest = moment.replace(tzinfo=None)
    if moment.fold:
        utc = moment.astimezone(UTC)
        for seconds in range(1, 3 * 3600 + 1):
            earlier = (utc - timedelta(seconds=seconds)).astimezone(moment.tzinfo)
            if earlier.date() != moment.date():
                break
            latest = max(latest, earlier.replace(tzinfo=None))
        if latest > moment.replace(tzinfo=None):
            latest += timedelta(seconds=1)  # the clock went back *from* the next whole second
    return latest - midnight


@PROPERTY_SETTINGS
@given(calendar_names, instants, st.integers(1, 12))
def test_days_keep_the_wall_clock_time(name: str, start: datetime, days: int) -> None:
    calendar = CALENDARS[name]
    zone = ZoneInfo(calendar.timezone)
    opening = calendar.next_open(start).astimezone(zone)
    due = calendar.add(start, Duration(open_days=days)).astimezone(zone)
    target = nth_open_day(calendar, opening.date(), days)
    assert calendar.is_open(due)
    # the time kept is the latest the wall clock showed that day (it never runs back)
    kept = wall_time_reached(opening)
    same_time = datetime.combine(target, time(), tzinfo=zone) + kept  # wall-clock arithmetic
    exists = same_time.astimezone(UTC).astimezone(zone).replace(tzinfo=None) == (
        same_time.replace(tzinfo=None)
    )
    if exists and open_on_the_wall(calendar, same_time):
        # Repeated wall times take their first occurrence (fold=0), as zoneinfo does.
        assert due == same_time
    elif due.date() == target:
        assert due.replace(tzinfo=None) - datetime.combine(target, time()) > kept
    else:  # nothing open on the target day from that time on: the next opening after it
        assert due.date() > target
        assert calendar.elapsed(same_time, due) == timedelta(0)


@PROPERTY_SETTINGS
@given(calendar_names, instants, st.integers(1, 3))
def test_a_week_is_the_open_weekdays(name: str, start: datetime, weeks: int) -> None:
    calendar = CALENDARS[name]
    as_days = Duration(open_days=weeks * calendar.hours.open_weekdays)
    assert calendar.add(start, Duration(open_weeks=weeks)) == calendar.add(start, as_days)
