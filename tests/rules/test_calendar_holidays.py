"""Holidays from a rule file's list and from iCalendar (.ics) text."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from rules.calendar import (
    RECURRENCE_LAST_YEAR,
    BusinessCalendar,
    holidays_from_ics,
    parse_holidays,
    parse_hours,
)


def ics(*events: str) -> str:
    body = "".join(f"BEGIN:VEVENT\r\n{event.strip()}\r\nEND:VEVENT\r\n" for event in events)
    return (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//escalator tests//EN\r\n"
        + body.replace("\n", "\r\n").replace("\r\r\n", "\r\n")
        + "END:VCALENDAR\r\n"
    )


CHRISTMAS_FEED = ics(
    """UID:xmas@example
SUMMARY:Christmas (office closed)
DTSTART;VALUE=DATE:20261224
DTEND;VALUE=DATE:20261227""",
    """UID:new-year@example
SUMMARY:New Year
DTSTART;VALUE=DATE:20270101""",
)


def test_inline_list() -> None:
    assert parse_holidays(["2026-12-24", date(2026, 12, 25), " 2026-12-26 "]) == {
        date(2026, 12, 24),
        date(2026, 12, 25),
        date(2026, 12, 26),
    }


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ("2026-13-01", "not a date in YYYY-MM-DD form"),
        ("24.12.2026", "not a date in YYYY-MM-DD form"),
        (20261224, "not a date such as 2026-12-24"),
        (datetime(2026, 12, 24, 12, 0), "has a time; holidays are whole days"),
    ],
)
def test_inline_list_errors(item: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_holidays([item])


def test_all_day_and_multi_day_events() -> None:
    # DTEND is exclusive: 24, 25 and 26 Dec; no DTEND means one day.
    assert holidays_from_ics(CHRISTMAS_FEED) == {
        date(2026, 12, 24),
        date(2026, 12, 25),
        date(2026, 12, 26),
        date(2027, 1, 1),
    }


def test_duration_instead_of_dtend() -> None:
    feed = ics("UID:a\nSUMMARY:Shutdown\nDTSTART;VALUE=DATE:20260803\nDURATION:P5D")
    assert holidays_from_ics(feed) == {date(2026, 8, 3) + timedelta(days=n) for n in range(5)}


def test_yearly_recurrences_are_expanded_within_the_year_range() -> None:
    feed = ics(
        """UID:labour@example
SUMMARY:Labour Day
DTSTART;VALUE=DATE:20200501
RRULE:FREQ=YEARLY""",
        """UID:thanksgiving@example
SUMMARY:Thanksgiving
DTSTART;VALUE=DATE:20241128
DTEND;VALUE=DATE:20241130
RRULE:FREQ=YEARLY;BYMONTH=11;BYDAY=4TH""",
    )
    days = holidays_from_ics(feed, first_year=2025, last_year=2027)
    assert days == {
        date(2025, 5, 1),
        date(2026, 5, 1),
        date(2027, 5, 1),
        # fourth Thursday of November and the Friday after
        date(2025, 11, 27),
        date(2025, 11, 28),
        date(2026, 11, 26),
        date(2026, 11, 27),
        date(2027, 11, 25),
        date(2027, 11, 26),
    }
    by_default = holidays_from_ics(feed)
    assert date(2020, 5, 1) in by_default
    assert date(RECURRENCE_LAST_YEAR, 5, 1) in by_default
    assert date(RECURRENCE_LAST_YEAR + 1, 5, 1) not in by_default


def test_count_until_and_exdate_end_a_recurrence() -> None:
    feed = ics(
        """UID:a
SUMMARY:Founders day
DTSTART;VALUE=DATE:20260610
RRULE:FREQ=YEARLY;COUNT=3
EXDATE;VALUE=DATE:20270610""",
        """UID:b
SUMMARY:Old holiday
DTSTART;VALUE=DATE:20250301
RRULE:FREQ=YEARLY;UNTIL=20260301""",
    )
    assert holidays_from_ics(feed) == {
        date(2026, 6, 10),
        date(2028, 6, 10),
        date(2025, 3, 1),
        date(2026, 3, 1),
    }


def test_rdate_adds_and_exdate_removes_days() -> None:
    feed = ics(
        """UID:a
SUMMARY:Bridge days
DTSTART;VALUE=DATE:20260515
RDATE;VALUE=DATE:20261002,20261231
EXDATE;VALUE=DATE:20261231"""
    )
    assert holidays_from_ics(feed) == {date(2026, 5, 15), date(2026, 10, 2)}


def test_bad_rrule() -> None:
    feed = ics("UID:a\nSUMMARY:Odd\nDTSTART;VALUE=DATE:20260515\nRRULE:FREQ=SOMETIMES")
    with pytest.raises(ValueError, match="'Odd'"):
        holidays_from_ics(feed)


def test_midnight_to_midnight_timed_events_count_as_whole_days() -> None:
    feed = ics(
        "UID:a\nSUMMARY:Closed\nDTSTART;TZID=Europe/Berlin:20261231T000000\n"
        "DTEND;TZID=Europe/Berlin:20270101T000000"
    )
    assert holidays_from_ics(feed) == {date(2026, 12, 31)}


def test_partial_day_events_are_refused() -> None:
    feed = ics("UID:a\nSUMMARY:Team offsite\nDTSTART:20261231T130000Z\nDTEND:20261231T170000Z")
    with pytest.raises(ValueError, match=r"'Team offsite': DTSTART .* has a time of day"):
        holidays_from_ics(feed)


def test_malformed_text() -> None:
    with pytest.raises(ValueError, match="not a valid iCalendar text"):
        holidays_from_ics("this is not a calendar")
    with pytest.raises(ValueError, match="has no DTSTART"):
        holidays_from_ics(ics("UID:a\nSUMMARY:Nothing"))


def test_feed_drives_a_calendar() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    calendar = BusinessCalendar(
        "Europe/Berlin", parse_hours({"mon-fri": "08:00-18:00"}), holidays_from_ics(CHRISTMAS_FEED)
    )
    wednesday_1600 = datetime(2026, 12, 23, 16, 0, tzinfo=berlin)
    assert calendar.add(wednesday_1600, timedelta(hours=8)) == datetime(
        2026, 12, 28, 14, 0, tzinfo=berlin
    )
