"""Business calendars: open hours in a time zone minus holidays, and SLA-clock arithmetic on them.

All methods take aware datetimes in any zone and return UTC-aware datetimes. Open hours
are local wall-clock times; `s m h` durations are real elapsed seconds inside them; `d w`
count open days. The exact rules, with worked examples, are in docs/calendars.md.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from rules._durations import Duration
from rules._hours import WeeklyHours
from rules._localtime import DAY_US, ONE_US, LocalTime, Span, from_us, to_us

__all__ = ["ALWAYS", "BusinessCalendar"]

_ONE_DAY = timedelta(days=1)
_WEEK = timedelta(days=7)
_UTC_NAMES = frozenset({"UTC", "Etc/UTC", "Etc/UCT", "UCT", "Etc/Zulu", "Zulu", "Universal"})
_DAY_CACHE_SIZE = 4096
_DUE_CACHE_SIZE = 1024
"""Recent `(start, duration)` sums a calendar keeps: a new case's clocks and its decision's
due times add the same targets to the same start (see `add_us`)."""


class BusinessCalendar:
    """Open hours in an IANA time zone, minus holidays; counts open time between instants.

    `hours=None` (or `WeeklyHours.always()`) means open 24x7 in that zone; holidays then
    close whole local days. Raises `ValueError` for an unknown time zone.
    """

    __slots__ = (
        "_closed_run_limit",
        "_day_spans",
        "_durations_added",
        "_holiday_list",
        "_local",
        "_open_days_per_week",
        "_plain_days",
        "_plain_open_time",
        "_week_open_us",
        "holidays",
        "hours",
        "timezone",
    )

    def __init__(
        self,
        timezone: str,
        hours: WeeklyHours | None = None,
        holidays: Iterable[date] = frozenset(),
    ) -> None:
        try:
            zone = ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError, TypeError):
            raise ValueError(
                f"unknown time zone {timezone!r}: use an IANA name such as Europe/Berlin, "
                "America/New_York or UTC"
            ) from None
        self.timezone: str = timezone
        """The IANA zone name open hours are read in."""
        self.hours: WeeklyHours = hours if hours is not None else WeeklyHours.always()
        """The weekly open hours in local wall-clock time."""
        self.holidays: frozenset[date] = frozenset(holidays)
        """Local dates on which the calendar is closed all day."""
        for holiday in self.holidays:
            if isinstance(holiday, datetime) or not isinstance(holiday, date):
                raise ValueError(f"holidays are whole dates, not {holiday!r}")
        self._holiday_list = sorted(self.holidays)
        self._local = LocalTime(zone)
        self._plain_open_time = self.hours.is_always and not self.holidays
        self._plain_days = self._plain_open_time and timezone in _UTC_NAMES
        self._week_open_us = self.hours.weekly_open_time // ONE_US
        self._open_days_per_week = self.hours.open_weekdays
        # More closed days in a row than this means the calendar never opens again: each
        # holiday can close at most one week's only open day.
        self._closed_run_limit = 7 * (len(self.holidays) + 2)
        self._day_spans = lru_cache(maxsize=_DAY_CACHE_SIZE)(self._compute_day_spans)
        self._durations_added = lru_cache(maxsize=_DUE_CACHE_SIZE)(self._add_duration)

    @classmethod
    def always(cls) -> BusinessCalendar:
        """The 24x7 calendar in UTC: plain clock arithmetic, `1d` = 24 hours."""
        return ALWAYS

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, BusinessCalendar):
            return NotImplemented
        return (self.timezone, self.hours, self.holidays) == (
            other.timezone,
            other.hours,
            other.holidays,
        )

    def __hash__(self) -> int:
        return hash((self.timezone, self.hours, self.holidays))

    def __repr__(self) -> str:
        return (
            f"BusinessCalendar({self.timezone!r}, hours={self.hours.describe()!r}, "
            f"holidays={len(self.holidays)} days)"
        )

    @property
    def open_days_per_week(self) -> int:
        """How many open days `1w` stands for: the weekdays with any open hours (7 for 24x7)."""
        return self._open_days_per_week

    # -- public arithmetic -------------------------------------------------------------

    def is_open(self, moment: datetime) -> bool:
        """True when `moment` falls inside open hours (ranges include start, exclude end)."""
        if self._plain_open_time:
            to_us(moment)
            return True
        instant = to_us(moment)
        spans = self._day_spans(self._local.local_date(instant))
        return any(start <= instant < end for start, end in spans)

    def next_open(self, moment: datetime) -> datetime:
        """`moment` itself if open, else the next instant at which the calendar opens."""
        return from_us(self._next_open(to_us(moment)))

    def add(self, start: datetime, duration: Duration | timedelta) -> datetime:
        """The instant at which `duration` of the calendar has passed after `start`.

        Open days (`d`, `w`) are applied first, then open time (`s m h`). A zero duration
        gives `start`. A start outside open hours counts from the next opening.
        """
        instant = to_us(start)
        if isinstance(duration, timedelta):
            # plain open time, to the microsecond (paused totals between sub-second instants)
            return from_us(self.add_open_us(instant, duration // ONE_US))
        return from_us(self._durations_added(instant, Duration.of(duration)))

    def elapsed(self, start: datetime, end: datetime) -> timedelta:
        """Open time between two instants; zero when `end` is not after `start`."""
        low, high = to_us(start), to_us(end)
        if high <= low:
            return timedelta(0)
        if self._plain_open_time:
            return timedelta(microseconds=high - low)
        return timedelta(microseconds=self._elapsed(low, high))

    # -- the same arithmetic on integer microseconds since the epoch -----------------------

    def add_us(self, instant: int, duration: Duration | timedelta) -> int:
        """`add` for an instant in microseconds since the epoch, giving one.

        The calendar remembers its recent sums (a bounded cache), so adding the same target
        to the same start again, as a new case's clocks and its decision's due times do,
        costs a look-up.
        """
        return self._durations_added(instant, Duration.of(duration))

    def add_open_us(self, instant: int, open_time: int) -> int:
        """`add` of plain open time (microseconds, not negative) to an instant in microseconds."""
        if open_time < 0:
            raise ValueError(f"durations cannot be negative: {timedelta(microseconds=open_time)!r}")
        return self._add_open_time(instant, open_time) if open_time else instant

    def elapsed_us(self, low: int, high: int) -> int:
        """`elapsed` between two instants in microseconds, in microseconds."""
        if high <= low:
            return 0
        if self._plain_open_time:
            return high - low
        return self._elapsed(low, high)

    # -- internals, on integer microseconds ------------------------------------------------

    def _add_duration(self, instant: int, amount: Duration) -> int:
        if amount.is_zero:
            return instant
        days = amount.open_days + amount.open_weeks * self._open_days_per_week
        if days:
            instant = self._add_days(instant, days)
        if amount.open_time:
            instant = self._add_open_time(instant, amount.open_time // ONE_US)
        return instant

    def _compute_day_spans(self, day: date) -> tuple[Span, ...]:
        if day in self.holidays:
            return ()
        ranges = self.hours.ranges(day.weekday())
        if not ranges:
            return ()
        return self._local.spans(day, ((r.start_minute, r.end_minute) for r in ranges))

    def _never_opens(self, day: date) -> ValueError:
        return ValueError(
            f"calendar {self!r} has no open hours for {self._closed_run_limit} days after {day}"
        )

    def _next_open(self, instant: int) -> int:
        if self._plain_open_time:
            return instant
        day = self._local.local_date(instant)
        for _ in range(self._closed_run_limit):
            for start, end in self._day_spans(day):
                if end > instant:
                    return max(start, instant)
            day += _ONE_DAY
        raise self._never_opens(day)

    def _add_open_time(self, instant: int, remaining: int) -> int:
        if self._plain_open_time:
            return instant + remaining
        day = self._local.local_date(instant)
        closed_run = 0
        first_day = True
        while True:
            if not first_day:
                # Whole weeks without holidays or clock changes hold the nominal open time.
                while remaining > self._week_open_us and self._is_plain_week(day):
                    remaining -= self._week_open_us
                    day += _WEEK
            first_day = False
            spans = self._day_spans(day)
            for span_start, end in spans:
                if end <= instant:
                    continue
                start = max(span_start, instant)
                available = end - start
                if remaining <= available:
                    return start + remaining
                remaining -= available
            closed_run = 0 if spans else closed_run + 1
            if closed_run > self._closed_run_limit:
                raise self._never_opens(day)
            day += _ONE_DAY

    def _add_days(self, instant: int, days: int) -> int:
        if self._plain_days:
            return instant + days * DAY_US
        instant = self._next_open(instant)
        day = self._local.local_date(instant)
        time_of_day = self._local.time_of_day_reached(instant)
        closed_run = 0
        while days:
            day += _ONE_DAY
            if self._day_spans(day):
                days -= 1
                closed_run = 0
            else:
                closed_run += 1
                if closed_run > self._closed_run_limit:
                    raise self._never_opens(day)
        return self._next_open(self._local.instant_of(day, time_of_day))

    def _elapsed(self, low: int, high: int) -> int:
        day = self._local.local_date(low)
        last_day = self._local.local_date(high)
        total = 0
        first_day = True
        while day <= last_day:
            if not first_day and day + _WEEK <= last_day and self._is_plain_week(day):
                total += self._week_open_us
                day += _WEEK
                continue
            first_day = False
            for start, end in self._day_spans(day):
                overlap = min(end, high) - max(start, low)
                if overlap > 0:
                    total += overlap
            day += _ONE_DAY
        return total

    def _is_plain_week(self, day: date) -> bool:
        """True when the 7 local days from `day` have no holiday and no UTC-offset change."""
        index = bisect.bisect_left(self._holiday_list, day)
        if index < len(self._holiday_list) and self._holiday_list[index] < day + _WEEK:
            return False
        return self._local.midnight_offset(day) == self._local.midnight_offset(day + _WEEK)


ALWAYS = BusinessCalendar("UTC")
"""Open 24x7 in UTC with no holidays: plain clock arithmetic."""
