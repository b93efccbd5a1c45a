"""Long spans must not be walked day by day: whole plain weeks are skipped.

The tests count the days the calendar looks at (its per-day span lookups), not the time a call
takes, so they say the same on a fast and a slow machine.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta

from rules.calendar import BusinessCalendar, parse_duration, parse_holidays, parse_hours

FRIDAY_EVENING = datetime(2026, 12, 18, 17, 30, tzinfo=UTC)


def office() -> BusinessCalendar:
    """Berlin office hours with a holiday fortnight; a fresh calendar, so no cache is shared."""
    return BusinessCalendar(
        "Europe/Berlin",
        parse_hours({"mon-fri": ["08:00-12:00", "13:00-18:00"]}),
        parse_holidays([f"2026-12-{day}" for day in range(21, 32)]),
    )


def days_looked_at(calendar: BusinessCalendar, call: Callable[[BusinessCalendar], object]) -> int:
    """How many per-day span lookups `call` makes on `calendar`."""
    looked_up = calendar._day_spans  # the unit of work being counted
    count = 0

    def counting(day: date) -> object:
        nonlocal count
        count += 1
        return looked_up(day)

    calendar._day_spans = counting  # type: ignore[assignment]
    call(calendar)
    return count


def test_typical_spans_look_at_a_few_days() -> None:
    five_days, eight_hours = parse_duration("5d"), parse_duration("8h")
    # Friday evening + 5 open days: the weekend and the holiday fortnight lie between.
    assert days_looked_at(office(), lambda c: c.add(FRIDAY_EVENING, five_days)) <= 30
    assert days_looked_at(office(), lambda c: c.add(FRIDAY_EVENING, eight_hours)) <= 20
    three_weeks = FRIDAY_EVENING + timedelta(days=21)
    assert days_looked_at(office(), lambda c: c.elapsed(FRIDAY_EVENING, three_weeks)) <= 22


def test_years_are_skipped_by_the_week() -> None:
    ten_years = FRIDAY_EVENING + timedelta(days=3650)
    # 520 weeks: only weeks with a holiday or a clock change are walked day by day.
    elapsed_days = days_looked_at(office(), lambda c: c.elapsed(FRIDAY_EVENING, ten_years))
    assert elapsed_days < 3650 // 4
    a_year_of_hours = timedelta(hours=2000)  # ~44 open weeks of 45 hours
    add_days = days_looked_at(office(), lambda c: c.add(FRIDAY_EVENING, a_year_of_hours))
    assert add_days < 308 // 4


def test_skipping_weeks_gives_the_same_answer_as_walking_days() -> None:
    calendar = office()
    start = FRIDAY_EVENING
    end = start + timedelta(days=400)
    day_by_day = sum(
        (
            calendar.elapsed(start + timedelta(days=n), start + timedelta(days=n + 1))
            for n in range(400)
        ),
        timedelta(),
    )
    assert calendar.elapsed(start, end) == day_by_day
