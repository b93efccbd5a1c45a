"""Weekly open hours in local wall-clock time: `{mon-fri: ["08:00-18:00"], sat: ["10:00-14:00"]}`.

This module only parses and holds the schedule; `BusinessCalendar` maps it onto real
instants in a time zone.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta

__all__ = [
    "ALWAYS_OPEN_SPELLING",
    "DAY_NAMES",
    "OpenHours",
    "OpenRange",
    "WeeklyHours",
    "parse_hours",
]

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
"""Day names as rule files spell them, Monday first (index = `date.weekday()`)."""

ALWAYS_OPEN_SPELLING = "24x7"
"""The rule-file shorthand for a calendar that is always open."""

_FULL_DAY_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_MINUTES_PER_DAY = 24 * 60
_RANGE = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")
_DAY_HELP = "use mon tue wed thu fri sat sun, a range such as mon-fri, or a list such as mon,wed"


@dataclass(frozen=True, order=True)
class OpenRange:
    """One open range of a day, `start`-`end` in minutes after local midnight (end may be 24:00)."""

    start_minute: int
    end_minute: int

    def __post_init__(self) -> None:
        if not 0 <= self.start_minute < self.end_minute <= _MINUTES_PER_DAY:
            raise ValueError(f"not a valid open range: {self.start_minute}-{self.end_minute}")

    @property
    def length(self) -> timedelta:
        """How long the range is on a day without a daylight-saving change."""
        return timedelta(minutes=self.end_minute - self.start_minute)

    def __str__(self) -> str:
        return f"{_clock(self.start_minute)}-{_clock(self.end_minute)}"


@dataclass(frozen=True)
class WeeklyHours:
    """A week of open ranges in local wall-clock time, Monday first; `days[d]` is sorted."""

    days: tuple[tuple[OpenRange, ...], ...]

    def __post_init__(self) -> None:
        if len(self.days) != 7:
            raise ValueError("weekly hours need exactly 7 days, Monday first")
        if not any(self.days):
            raise ValueError("hours: the calendar is never open; give at least one open range")

    @classmethod
    def always(cls) -> WeeklyHours:
        """Open all day, every day (`24x7`)."""
        return cls(days=((OpenRange(0, _MINUTES_PER_DAY),),) * 7)

    @property
    def is_always(self) -> bool:
        """True when every day is open from 00:00 to 24:00."""
        return self == WeeklyHours.always()

    @property
    def open_weekdays(self) -> int:
        """How many days of the week have any open range; this is how many open days `1w` is."""
        return sum(1 for ranges in self.days if ranges)

    @property
    def weekly_open_time(self) -> timedelta:
        """Open time in a week with no holiday and no daylight-saving change."""
        return sum((r.length for ranges in self.days for r in ranges), timedelta(0))

    def ranges(self, weekday: int) -> tuple[OpenRange, ...]:
        """The open ranges of a weekday (0 = Monday), sorted."""
        return self.days[weekday]

    def describe(self) -> str | dict[str, list[str]]:
        """The schedule in rule-file form: `24x7` or `{day: ["HH:MM-HH:MM", ...]}`."""
        if self.is_always:
            return ALWAYS_OPEN_SPELLING
        return {
            DAY_NAMES[day]: [str(r) for r in ranges]
            for day, ranges in enumerate(self.days)
            if ranges
        }


OpenHours = WeeklyHours
"""Alias of `WeeklyHours` (the name used in early design notes)."""


def parse_hours(value: Mapping[str, object] | str) -> WeeklyHours:
    """Parse the `hours:` of a calendar: `24x7` or a mapping of day keys to open ranges.

    Keys are a day (`mon`), a range of days (`mon-fri`; `fri-mon` wraps over the weekend)
    or a comma list (`mon,wed`). Values are one `"HH:MM-HH:MM"` string or a list of them
    (an empty list means closed); `24:00` may end a range. Raises `ValueError` naming the
    day and the ranges for malformed or overlapping ranges and unknown day names.
    """
    if isinstance(value, str):
        if value.strip().lower() == ALWAYS_OPEN_SPELLING:
            return WeeklyHours.always()
        raise ValueError(
            f"hours must be {ALWAYS_OPEN_SPELLING} or a mapping such as "
            f'{{mon-fri: ["08:00-18:00"]}}, not {value!r}'
        )
    if not isinstance(value, Mapping):
        raise ValueError(
            f'hours must be a mapping such as {{mon-fri: ["08:00-18:00"]}}, not {value!r}'
        )
    per_day: list[list[tuple[OpenRange, str]]] = [[] for _ in DAY_NAMES]
    for key, spec in value.items():
        days = _parse_days(key)
        for open_range in _parse_ranges(key, spec):
            for day in days:
                per_day[day].append((open_range, str(key)))
    result: list[tuple[OpenRange, ...]] = []
    for day, entries in enumerate(per_day):
        entries.sort()
        for (earlier, earlier_key), (later, later_key) in itertools.pairwise(entries):
            if later.start_minute < earlier.end_minute:
                where = f"'{earlier_key}'"
                if earlier_key != later_key:
                    where += f" and '{later_key}'"
                raise ValueError(
                    f"hours: on {DAY_NAMES[day]} the ranges {earlier} and {later} overlap "
                    f"(from {where}); merge them or make them disjoint"
                )
        result.append(tuple(r for r, _ in entries))
    return WeeklyHours(days=tuple(result))


def _parse_days(key: object) -> list[int]:
    if not isinstance(key, str) or not key.strip():
        raise ValueError(
            f"hours: a day key must be a day name such as mon-fri ({_DAY_HELP}), not {key!r}"
        )
    days: list[int] = []
    for part in key.split(","):
        bounds = [_day_index(key, name) for name in part.split("-")]
        if len(bounds) == 1:
            days.append(bounds[0])
        elif len(bounds) == 2:
            first, last = bounds
            days.extend((first + offset) % 7 for offset in range((last - first) % 7 + 1))
        else:
            raise ValueError(
                f"hours: day range {part.strip()!r} in {key!r} has too many '-'; {_DAY_HELP}"
            )
    return sorted(set(days))


def _day_index(key: str, name: str) -> int:
    cleaned = name.strip().lower()
    if cleaned in DAY_NAMES:
        return DAY_NAMES.index(cleaned)
    if cleaned in _FULL_DAY_NAMES:
        return _FULL_DAY_NAMES.index(cleaned)
    raise ValueError(f"hours: unknown day {name.strip()!r} in {key!r}; {_DAY_HELP}")


def _parse_ranges(key: object, spec: object) -> list[OpenRange]:
    items = [spec] if isinstance(spec, str) else spec
    if not isinstance(items, list | tuple):
        raise ValueError(
            f'hours: {key}: expected a list of ranges such as ["08:00-18:00"], not {spec!r}'
        )
    return [_parse_range(key, item) for item in items]


def _parse_range(key: object, item: object) -> OpenRange:
    match = _RANGE.match(item) if isinstance(item, str) else None
    if match is None:
        raise ValueError(f"hours: {key}: {item!r} is not a range such as 08:00-18:00")
    start_hour, start_minute, end_hour, end_minute = (int(g) for g in match.groups())
    start = _minute_of_day(key, item, start_hour, start_minute, allow_end_of_day=False)
    end = _minute_of_day(key, item, end_hour, end_minute, allow_end_of_day=True)
    if end <= start:
        raise ValueError(
            f"hours: {key}: in {item!r} the end is not after the start; a range cannot cross "
            f'midnight: split it, e.g. {{fri: ["22:00-24:00"], sat: ["00:00-06:00"]}}'
        )
    return OpenRange(start, end)


def _minute_of_day(
    key: object, item: object, hour: int, minute: int, *, allow_end_of_day: bool
) -> int:
    if allow_end_of_day and (hour, minute) == (24, 0):
        return _MINUTES_PER_DAY
    if hour > 23 or minute > 59:
        limit = "00:00 to 24:00" if allow_end_of_day else "00:00 to 23:59"
        raise ValueError(f"hours: {key}: {item!r} has a time outside {limit}")
    return hour * 60 + minute


def _clock(minute_of_day: int) -> str:
    return f"{minute_of_day // 60:02d}:{minute_of_day % 60:02d}"
