"""Holidays as sets of local dates: from a rule file's inline list or from iCalendar (.ics) text.

The caller reads any file; these functions only parse text and values.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, time, timedelta
from typing import Any

# python-dateutil ships no type information (types-python-dateutil is not a dev dependency).
from dateutil.rrule import rrulestr
from icalendar import Calendar

__all__ = ["RECURRENCE_FIRST_YEAR", "RECURRENCE_LAST_YEAR", "holidays_from_ics", "parse_holidays"]

RECURRENCE_FIRST_YEAR = 2000
"""Recurring events (RRULE) are expanded from this year (or their DTSTART, if later)..."""

RECURRENCE_LAST_YEAR = 2100
"""...up to and including this year, unless the rule ends earlier (UNTIL or COUNT)."""

_ONE_DAY = timedelta(days=1)


def parse_holidays(items: Iterable[object]) -> frozenset[date]:
    """Holidays from a rule file's list: ISO dates (`"2026-12-24"`) or `date` values.

    Raises `ValueError` naming the first item that is not a whole date.
    """
    days: set[date] = set()
    for item in items:
        if isinstance(item, datetime):
            raise ValueError(f"holiday {item.isoformat()} has a time; holidays are whole days")
        if isinstance(item, date):
            days.add(item)
            continue
        if not isinstance(item, str):
            raise ValueError(f"holiday {item!r} is not a date such as 2026-12-24")
        try:
            days.add(date.fromisoformat(item.strip()))
        except ValueError:
            raise ValueError(f"holiday {item!r} is not a date in YYYY-MM-DD form") from None
    return frozenset(days)


def holidays_from_ics(
    text: str,
    *,
    first_year: int = RECURRENCE_FIRST_YEAR,
    last_year: int = RECURRENCE_LAST_YEAR,
) -> frozenset[date]:
    """Every date covered by the all-day events (VEVENT) of an iCalendar text.

    Multi-day events cover DTSTART up to, not including, DTEND (or DTSTART + DURATION;
    one day when neither is given). Recurring events (RRULE, with RDATE and EXDATE) are
    expanded for the years `first_year` to `last_year`. An event with a time of day is
    accepted only when it runs from midnight to midnight; other timed events raise
    `ValueError`, since a holiday closes whole days.
    """
    try:
        calendar = Calendar.from_ical(text)
    except Exception as error:  # icalendar raises assorted errors on malformed input
        raise ValueError(f"not a valid iCalendar text: {error}") from None
    window = (date(first_year, 1, 1), date(last_year, 12, 31))
    days: set[date] = set()
    for event in calendar.walk("VEVENT"):
        days.update(_event_days(event, window))
    return frozenset(days)


def _event_days(event: Any, window: tuple[date, date]) -> set[date]:
    summary = str(event.get("SUMMARY", "(no summary)"))
    if event.get("DTSTART") is None:
        raise ValueError(f"iCalendar event {summary!r} has no DTSTART")
    start = _whole_day(event.decoded("DTSTART"), summary, "DTSTART")
    if event.get("DTEND") is not None:
        end = _whole_day(event.decoded("DTEND"), summary, "DTEND")
    elif event.get("DURATION") is not None:
        end = start + _whole_days(event.decoded("DURATION"), summary)
    else:
        end = start + _ONE_DAY
    length = max((end - start).days, 1)
    starts = _rule_dates(event, start, summary, window) if event.get("RRULE") else {start}
    starts.update(_dates_of(event, "RDATE", summary))
    starts.difference_update(_dates_of(event, "EXDATE", summary))
    return {first + timedelta(days=n) for first in starts for n in range(length)}


def _rule_dates(event: Any, start: date, summary: str, window: tuple[date, date]) -> set[date]:
    rule_text = event["RRULE"].to_ical().decode()
    try:
        rule = rrulestr(rule_text, dtstart=datetime.combine(start, time()), ignoretz=True)
    except (ValueError, TypeError) as error:
        raise ValueError(f"iCalendar event {summary!r}: bad RRULE {rule_text!r}: {error}") from None
    low = datetime.combine(window[0], time())
    high = datetime.combine(window[1], time())
    return {moment.date() for moment in rule.between(low, high, inc=True)}


def _dates_of(event: Any, name: str, summary: str) -> set[date]:
    value = event.get(name)
    if value is None:
        return set()
    lists = value if isinstance(value, list) else [value]
    return {_whole_day(item.dt, summary, name) for dates in lists for item in dates.dts}


def _whole_day(value: object, summary: str, field: str) -> date:
    if isinstance(value, datetime):
        if value.time() != time():
            raise ValueError(
                f"iCalendar event {summary!r}: {field} {value.isoformat()} has a time of day; "
                "holidays must be all-day events"
            )
        return value.date()
    if isinstance(value, date):
        return value
    raise ValueError(f"iCalendar event {summary!r}: {field} is not a date")


def _whole_days(value: object, summary: str) -> timedelta:
    if not isinstance(value, timedelta) or value % _ONE_DAY:
        raise ValueError(f"iCalendar event {summary!r}: DURATION must be whole days")
    return value
