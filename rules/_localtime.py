"""Local wall-clock time of one IANA zone mapped onto real instants, daylight-saving aware.

Instants are integer microseconds since the Unix epoch (exact, fast to compare and add).
The rule for wall times is "open while the clock on the wall shows an open time":

- a wall time that the clock shows twice (autumn fall-back) counts both times;
- a wall time that the clock skips (spring-forward gap) does not happen at all;
- a single wall time that must become one instant (the time of day `+1d` lands on)
  is the first instant at which the clock shows that time or later, so a skipped time
  becomes the moment of the jump and a repeated time its first occurrence;
- the time of day that `+1d` keeps is the latest the clock has shown that day, so a start
  in the second pass of a repeated stretch keeps the time the clock went back from.

Assumes, as holds for every zone in current tzdata, at most one offset change within
any 30 hours, of at most 3 hours, and local dates that never run backwards.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

__all__ = ["DAY_US", "ONE_US", "LocalTime", "from_us", "to_us"]

ONE_US = timedelta(microseconds=1)
SECOND_US = 1_000_000
MINUTE_US = 60 * SECOND_US
HOUR_US = 60 * MINUTE_US
DAY_US = 24 * HOUR_US
_EPOCH_UTC = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_NAIVE = datetime(1970, 1, 1)  # wall-clock arithmetic is naive on purpose
_MARGIN_US = 3 * HOUR_US
_PIECES_CACHE_SIZE = 4096
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()

Piece = tuple[int, int, int]
"""A stretch of instants `[start, end)` during which the zone's UTC offset is constant."""

Span = tuple[int, int]
"""Instants `[start, end)` in microseconds since the epoch."""


def to_us(moment: datetime) -> int:
    """An aware datetime as microseconds since the epoch; naive datetimes are refused."""
    if moment.tzinfo is not UTC and (moment.tzinfo is None or moment.utcoffset() is None):
        raise ValueError(f"naive datetime {moment.isoformat()}: pass an aware datetime (e.g. UTC)")
    return (moment - _EPOCH_UTC) // ONE_US


def from_us(instant: int) -> datetime:
    """Microseconds since the epoch as a UTC-aware datetime."""
    return _EPOCH_UTC + timedelta(0, 0, instant)  # positional: a third cheaper than by name


def _wall_us(wall: datetime) -> int:
    return (wall - _EPOCH_NAIVE) // ONE_US


class LocalTime:
    """Wall-clock arithmetic for one zone: local dates, and open ranges as instants."""

    def __init__(self, zone: ZoneInfo) -> None:
        self.zone = zone
        self._pieces = lru_cache(maxsize=_PIECES_CACHE_SIZE)(self._compute_pieces)
        self._utc_day_pieces = lru_cache(maxsize=_PIECES_CACHE_SIZE)(self._compute_utc_day_pieces)

    def offset_at(self, instant: int) -> int:
        """The zone's UTC offset at an instant, in microseconds."""
        offset = from_us(instant).astimezone(self.zone).utcoffset()
        assert offset is not None  # a ZoneInfo always has an offset for aware datetimes
        return offset // ONE_US

    def local_date(self, instant: int) -> date:
        """The date the wall clock shows at an instant.

        Read off the constant-offset stretches around the instant's UTC day (remembered per
        UTC day): the wall clock shows the instant plus the stretch's offset. The same date
        as `datetime.astimezone(zone).date()` gives, for a fraction of its cost.
        """
        for start, end, offset in self._utc_day_pieces(instant // DAY_US):
            if start <= instant < end:
                return date.fromordinal(_EPOCH_ORDINAL + (instant + offset) // DAY_US)
        return self._zone_date(instant)  # not reached while the module's assumptions hold

    def _zone_date(self, instant: int) -> date:
        return from_us(instant).astimezone(self.zone).date()

    def _compute_utc_day_pieces(self, utc_day: int) -> tuple[Piece, ...]:
        """The stretches of every local date that an instant of UTC day `utc_day` can show.

        Local dates never run backwards, so the instants of the UTC day show the dates from
        its first instant's to its last instant's; each date's `pieces` cover its instants.
        """
        first = self._zone_date(utc_day * DAY_US)
        last = self._zone_date((utc_day + 1) * DAY_US - 1)
        found: list[Piece] = []
        day = first
        while day <= last:
            found.extend(self.pieces(day))
            day += timedelta(days=1)
        return tuple(found)

    def time_of_day(self, instant: int) -> int:
        """Microseconds after local midnight that the wall clock shows at an instant."""
        local = from_us(instant).astimezone(self.zone)
        return _wall_us(local.replace(tzinfo=None)) % DAY_US

    def time_of_day_reached(self, instant: int) -> int:
        """The latest wall time the clock has shown on its current day, at an instant.

        Outside a repeated (fall-back) stretch this is `time_of_day`. During the second pass
        of a repeated stretch it is the wall time just before the clock went back: the day
        has already reached it, and keeping `+1d` monotonic needs wall time not to run back.
        """
        local = from_us(instant).astimezone(self.zone)
        shown = _wall_us(local.replace(tzinfo=None)) % DAY_US
        if not local.fold:
            return shown
        change = max(
            start for start, _end, _offset in self.pieces(local.date()) if start <= instant
        )
        midnight = _wall_us(datetime.combine(local.date(), time()))
        reached = change + self.offset_at(change - 1) - midnight
        return min(max(shown, reached), DAY_US)

    def pieces(self, day: date) -> tuple[Piece, ...]:
        """Constant-offset stretches of instants, as `(start, end, offset)`, covering the day.

        Remembered per day (a bounded cache): adding `d` to a time and finding an instant of
        a day ask for the same days again and again.
        """
        return self._pieces(day)

    def _compute_pieces(self, day: date) -> tuple[Piece, ...]:
        midnight = datetime.combine(day, time())
        next_midnight = midnight + timedelta(days=1)
        lo = _wall_us(midnight) - self._wall_offset(midnight, fold=0) - _MARGIN_US
        hi = _wall_us(next_midnight) - self._wall_offset(next_midnight, fold=1) + _MARGIN_US
        offset_lo, offset_hi = self.offset_at(lo), self.offset_at(hi)
        if offset_lo == offset_hi:
            return ((lo, hi, offset_lo),)
        # Bisect on whole seconds (tzdata transitions fall on whole seconds).
        before, after = lo // SECOND_US, hi // SECOND_US
        while after - before > 1:
            middle = (before + after) // 2
            if self.offset_at(middle * SECOND_US) == offset_lo:
                before = middle
            else:
                after = middle
        change = after * SECOND_US
        return ((lo, change, offset_lo), (change, hi, offset_hi))

    def spans(self, day: date, ranges: Iterable[tuple[int, int]]) -> tuple[Span, ...]:
        """The instants at which the wall clock on `day` shows a time in one of `ranges`.

        `ranges` are `(start_minute, end_minute)` after local midnight. The result is sorted
        and merged; it may be shorter or longer than the ranges on daylight-saving days.
        """
        midnight = _wall_us(datetime.combine(day, time()))
        pieces = self.pieces(day)
        found: list[Span] = []
        for start_minute, end_minute in ranges:
            wall_start = midnight + start_minute * MINUTE_US
            wall_end = midnight + end_minute * MINUTE_US
            for piece_start, piece_end, offset in pieces:
                start = max(wall_start - offset, piece_start)
                end = min(wall_end - offset, piece_end)
                if start < end:
                    found.append((start, end))
        found.sort()
        merged: list[Span] = []
        for start, end in found:
            if merged and start <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
            else:
                merged.append((start, end))
        return tuple(merged)

    def instant_of(self, day: date, time_of_day: int) -> int:
        """The first instant at which the wall clock shows `day` at `time_of_day` or later."""
        wall = _wall_us(datetime.combine(day, time())) + time_of_day
        pieces = self.pieces(day)
        for piece_start, piece_end, offset in pieces:
            instant = wall - offset
            if instant < piece_start:
                return piece_start  # the clock jumped over this wall time
            if instant < piece_end:
                return instant
        return pieces[-1][1]

    def midnight_offset(self, day: date) -> int:
        """The UTC offset, in microseconds, when the wall clock first shows `day` 00:00."""
        return self._wall_offset(datetime.combine(day, time()), fold=0)

    def _wall_offset(self, wall: datetime, *, fold: int) -> int:
        offset = wall.replace(tzinfo=self.zone, fold=fold).utcoffset()
        assert offset is not None
        return offset // ONE_US
