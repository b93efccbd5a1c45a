"""Long spans must not be walked minute by minute: generous time budgets that a per-minute loop
(tens of thousands of steps per call) could not meet, while the real code has ample margin."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from rules.calendar import BusinessCalendar, parse_duration, parse_holidays, parse_hours

OFFICE = BusinessCalendar(
    "Europe/Berlin",
    parse_hours({"mon-fri": ["08:00-12:00", "13:00-18:00"]}),
    parse_holidays([f"2026-12-{day}" for day in range(21, 32)]),  # a holiday fortnight
)
FRIDAY_EVENING = datetime(2026, 12, 18, 17, 30, tzinfo=UTC)


def per_call_seconds(call: object, repeat: int = 300) -> float:
    assert callable(call)
    call()  # warm the per-day cache
    started = time.perf_counter()
    for _ in range(repeat):
        call()
    return (time.perf_counter() - started) / repeat


def test_typical_spans_take_microseconds() -> None:
    five_days, eight_hours = parse_duration("5d"), parse_duration("8h")
    budget = 0.002  # 2 ms; typically 10-40 microseconds
    assert per_call_seconds(lambda: OFFICE.add(FRIDAY_EVENING, five_days)) < budget
    assert per_call_seconds(lambda: OFFICE.add(FRIDAY_EVENING, eight_hours)) < budget
    assert (
        per_call_seconds(
            lambda: OFFICE.elapsed(FRIDAY_EVENING, FRIDAY_EVENING + timedelta(days=21))
        )
        < budget
    )


def test_years_are_skipped_by_the_week() -> None:
    later = FRIDAY_EVENING + timedelta(days=3650)
    assert per_call_seconds(lambda: OFFICE.elapsed(FRIDAY_EVENING, later), repeat=20) < 0.05
    a_year_of_hours = timedelta(hours=2000)
    assert per_call_seconds(lambda: OFFICE.add(FRIDAY_EVENING, a_year_of_hours), repeat=20) < 0.05
