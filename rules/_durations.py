"""Rule durations such as `30m`, `1h30m`, `2d` or `1w`: parsing, adding and printing.

`s`, `m` and `h` count open time (real elapsed seconds inside open hours); `d` and `w`
count open days of a calendar, so their length in seconds depends on the calendar and
is only resolved by `BusinessCalendar.add`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from functools import lru_cache

__all__ = ["Duration", "parse_duration"]

_UNITS = "wdhms"
_UNIT_NAMES = {"w": "weeks", "d": "days", "h": "hours", "m": "minutes", "s": "seconds"}
_TOKEN = re.compile(r"(\d+)([a-zA-Z]?)")
_EXAMPLES = "e.g. 90s, 30m, 4h, 1h30m, 2d, 1w"
_SPELLING_CACHE_SIZE = 1024


@dataclass(frozen=True)
class Duration:
    """A duration from a rule file.

    `open_time` is counted inside the calendar's open hours (units `h m s`); `open_days`
    (unit `d`) and `open_weeks` (unit `w`) count whole open days of the calendar and are
    applied before `open_time` (see docs/calendars.md).
    """

    open_time: timedelta = timedelta(0)
    open_days: int = 0
    open_weeks: int = 0

    def __post_init__(self) -> None:
        if self.open_time < timedelta(0) or self.open_days < 0 or self.open_weeks < 0:
            raise ValueError(f"durations cannot be negative: {self!r}")
        if self.open_time % timedelta(seconds=1):
            raise ValueError(f"durations have whole seconds only: {self.open_time}")

    @classmethod
    def of(cls, value: Duration | timedelta) -> Duration:
        """`value` as a `Duration`; a plain `timedelta` is open time."""
        if isinstance(value, Duration):
            return value
        return cls(open_time=value)

    @property
    def is_zero(self) -> bool:
        """True for `0s`: no open time and no open days."""
        return not (self.open_time or self.open_days or self.open_weeks)

    def wall_clock(self) -> timedelta:
        """The duration on a plain clock, with no calendar: `1d` = 24 hours, `1w` = 7 days."""
        return self.open_time + timedelta(days=self.open_days + 7 * self.open_weeks)

    def __add__(self, other: object) -> Duration:
        if isinstance(other, timedelta):
            other = Duration(open_time=other)
        if not isinstance(other, Duration):
            return NotImplemented
        return Duration(
            open_time=self.open_time + other.open_time,
            open_days=self.open_days + other.open_days,
            open_weeks=self.open_weeks + other.open_weeks,
        )

    __radd__ = __add__

    def describe(self) -> str:
        """The canonical rule-file spelling, e.g. `1w2d1h30m`; `parse_duration` reads it back."""
        return _spelling(self)

    def __str__(self) -> str:
        return self.describe()


@lru_cache(maxsize=_SPELLING_CACHE_SIZE)
def _spelling(duration: Duration) -> str:
    """`Duration.describe`, remembered: a policy's few targets are spelled in every clock run."""
    seconds = int(duration.open_time.total_seconds())
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    parts = [
        f"{value}{unit}"
        for value, unit in (
            (duration.open_weeks, "w"),
            (duration.open_days, "d"),
            (hours, "h"),
            (minutes, "m"),
            (seconds, "s"),
        )
        if value
    ]
    return "".join(parts) or "0s"


def parse_duration(text: str) -> Duration:
    """Parse a rule duration such as `30m`, `1h30m`, `2d`, `90s` or `1w2d4h`.

    Units are `w d h m s`, each at most once and largest first, each after a whole
    number. Raises `ValueError` with a message fit for a `FILE:LINE:COL:` error.
    """
    if not isinstance(text, str):
        raise ValueError(f"a duration must be a string such as 30m ({_EXAMPLES}), not {text!r}")
    source = text.strip()
    if not source:
        raise ValueError(f"empty duration: expected a number and a unit ({_EXAMPLES})")
    values = dict.fromkeys(_UNITS, 0)
    position = 0
    last_unit_index = -1
    while position < len(source):
        match = _TOKEN.match(source, position)
        if match is None:
            raise ValueError(
                f"invalid duration {text!r}: expected a whole number at "
                f"{source[position:]!r} ({_EXAMPLES})"
            )
        number, unit = match.group(1), match.group(2).lower()
        if source.startswith((".", ","), match.end(1)):
            raise ValueError(
                f"invalid duration {text!r}: use whole numbers and smaller units, "
                f"e.g. 1h30m rather than 1.5h ({_EXAMPLES})"
            )
        if not unit:
            raise ValueError(
                f"invalid duration {text!r}: {number} has no unit; "
                f"use s, m, h, d or w ({_EXAMPLES})"
            )
        if unit not in _UNITS:
            raise ValueError(
                f"invalid duration {text!r}: unknown unit {match.group(2)!r}; "
                f"use s, m, h, d or w ({_EXAMPLES})"
            )
        unit_index = _UNITS.index(unit)
        if unit_index <= last_unit_index:
            raise ValueError(
                f"invalid duration {text!r}: {_UNIT_NAMES[unit]} ({unit}) must come once, "
                f"before smaller units, in the order w d h m s ({_EXAMPLES})"
            )
        last_unit_index = unit_index
        values[unit] = int(number)
        position = match.end()
    try:
        open_time = timedelta(hours=values["h"], minutes=values["m"], seconds=values["s"])
    except OverflowError:
        raise ValueError(f"invalid duration {text!r}: too long") from None
    return Duration(open_time=open_time, open_days=values["d"], open_weeks=values["w"])
