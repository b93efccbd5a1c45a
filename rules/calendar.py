"""Business calendars and SLA durations: the public API for open hours, holidays and due times.

Build a calendar from a rule file's `calendars:` entry with `parse_hours`,
`parse_holidays` or `holidays_from_ics`, then compute due times with
`BusinessCalendar.add(start, parse_duration("8h"))`. See docs/calendars.md.
"""

from rules._business_calendar import ALWAYS, BusinessCalendar
from rules._durations import Duration, parse_duration
from rules._holidays import (
    RECURRENCE_FIRST_YEAR,
    RECURRENCE_LAST_YEAR,
    holidays_from_ics,
    parse_holidays,
)
from rules._hours import (
    ALWAYS_OPEN_SPELLING,
    DAY_NAMES,
    OpenHours,
    OpenRange,
    WeeklyHours,
    parse_hours,
)

__all__ = [
    "ALWAYS",
    "ALWAYS_OPEN_SPELLING",
    "DAY_NAMES",
    "RECURRENCE_FIRST_YEAR",
    "RECURRENCE_LAST_YEAR",
    "BusinessCalendar",
    "Duration",
    "OpenHours",
    "OpenRange",
    "WeeklyHours",
    "holidays_from_ics",
    "parse_duration",
    "parse_holidays",
    "parse_hours",
]
