"""Worked examples of business-time arithmetic, every expected instant written out by hand in UTC.

The same examples appear, as timelines, in docs/calendars.md.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from rules.calendar import (
    ALWAYS,
    BusinessCalendar,
    Duration,
    parse_duration,
    parse_holidays,
    parse_hours,
)

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
KOLKATA = ZoneInfo("Asia/Kolkata")


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def due(calendar: BusinessCalendar, start: datetime, duration: str) -> datetime:
    return calendar.add(start, parse_duration(duration))


# Europe/Berlin: CET = UTC+1 in winter, CEST = UTC+2 in summer.
# 2026: summer time starts Sun 29 Mar 02:00 CET (01:00Z), ends Sun 25 Oct 03:00 CEST (01:00Z).
OFFICE = BusinessCalendar(
    "Europe/Berlin",
    parse_hours({"mon-fri": ["08:00-18:00"]}),
    parse_holidays(["2026-12-24", "2026-12-25", "2026-12-26"]),
)
EU_SUPPORT = BusinessCalendar(
    "Europe/Berlin", parse_hours({"mon-fri": ["08:00-18:00"], "sat": ["10:00-14:00"]})
)
BERLIN_24X7 = BusinessCalendar("Europe/Berlin", parse_hours("24x7"))
NIGHT_DESK = BusinessCalendar("Europe/Berlin", parse_hours({"sun": ["01:00-04:00"]}))
# America/New_York 2026: EDT starts Sun 8 Mar 02:00 EST (07:00Z), ends Sun 1 Nov 02:00 EDT (06:00Z).
NY_OFFICE = BusinessCalendar("America/New_York", parse_hours({"mon-fri": ["09:00-17:00"]}))
NY_24X7 = BusinessCalendar("America/New_York")
# Asia/Kolkata is UTC+05:30 all year.
INDIA = BusinessCalendar("Asia/Kolkata", parse_hours({"mon-fri": ["09:30-18:00"]}))


class TestFridayEvening:
    """Mon-fri 08:00-18:00 in Berlin, late November 2026 (CET, UTC+1)."""

    friday_1730 = datetime(2026, 11, 27, 17, 30, tzinfo=BERLIN)  # 16:30Z

    def test_eight_hours_run_into_monday(self) -> None:
        # 30 min on Friday, 7 h 30 min on Monday from 08:00 -> Mon 15:30 CET.
        assert due(OFFICE, self.friday_1730, "8h") == utc(2026, 11, 30, 14, 30)

    def test_one_open_day_is_monday_same_time(self) -> None:
        assert due(OFFICE, self.friday_1730, "1d") == utc(2026, 11, 30, 16, 30)

    def test_message_after_closing_counts_from_monday_opening(self) -> None:
        friday_1900 = datetime(2026, 11, 27, 19, 0, tzinfo=BERLIN)
        assert due(OFFICE, friday_1900, "30m") == utc(2026, 11, 30, 7, 30)
        # +1d starts from the next opening (Mon 08:00), so it is Tue 08:00.
        assert due(OFFICE, friday_1900, "1d") == utc(2026, 12, 1, 7, 0)
        assert OFFICE.next_open(friday_1900) == utc(2026, 11, 30, 7, 0)

    def test_deadline_can_be_the_closing_time_itself(self) -> None:
        assert due(OFFICE, self.friday_1730, "30m") == utc(2026, 11, 27, 17, 0)

    def test_one_week_is_five_open_days(self) -> None:
        assert OFFICE.open_days_per_week == 5
        assert due(OFFICE, self.friday_1730, "1w") == utc(2026, 12, 4, 16, 30)

    def test_elapsed_over_the_weekend(self) -> None:
        monday_0900 = datetime(2026, 11, 30, 9, 0, tzinfo=BERLIN)
        assert OFFICE.elapsed(self.friday_1730, monday_0900) == timedelta(hours=1, minutes=30)
        assert not OFFICE.is_open(datetime(2026, 11, 28, 12, 0, tzinfo=BERLIN))


class TestChristmasWeek:
    """Thu 24 to Sat 26 Dec 2026 are holidays; Sun 27 is closed anyway."""

    def test_hours_skip_the_holidays(self) -> None:
        wednesday_1600 = datetime(2026, 12, 23, 16, 0, tzinfo=BERLIN)
        # 2 h on Wednesday, then 6 h from Mon 28 Dec 08:00 -> 14:00 CET.
        assert due(OFFICE, wednesday_1600, "8h") == utc(2026, 12, 28, 13, 0)

    def test_days_skip_the_holidays(self) -> None:
        wednesday_1600 = datetime(2026, 12, 23, 16, 0, tzinfo=BERLIN)
        assert due(OFFICE, wednesday_1600, "1d") == utc(2026, 12, 28, 15, 0)
        assert due(OFFICE, wednesday_1600, "2d") == utc(2026, 12, 29, 15, 0)

    def test_a_week_with_holidays_is_longer(self) -> None:
        # Open days after Mon 21 Dec: Tue 22, Wed 23, Mon 28, Tue 29, Wed 30.
        monday_1000 = datetime(2026, 12, 21, 10, 0, tzinfo=BERLIN)
        assert due(OFFICE, monday_1000, "1w") == utc(2026, 12, 30, 9, 0)

    def test_holidays_contribute_nothing(self) -> None:
        wednesday_1200 = datetime(2026, 12, 23, 12, 0, tzinfo=BERLIN)
        monday_1200 = datetime(2026, 12, 28, 12, 0, tzinfo=BERLIN)
        assert OFFICE.elapsed(wednesday_1200, monday_1200) == timedelta(hours=10)
        assert not OFFICE.is_open(datetime(2026, 12, 24, 10, 0, tzinfo=BERLIN))
        assert OFFICE.next_open(datetime(2026, 12, 24, 10, 0, tzinfo=BERLIN)) == utc(
            2026, 12, 28, 7, 0
        )


class TestBerlinSpringForward:
    """Sun 29 Mar 2026: the clock jumps from 02:00 CET to 03:00 CEST (01:00Z)."""

    def test_office_hours_keep_their_wall_clock_times(self) -> None:
        friday_1700 = datetime(2026, 3, 27, 17, 0, tzinfo=BERLIN)  # 16:00Z
        # 1 h on Friday, then Mon 30 Mar 08:00 CEST + 1 h = 09:00 CEST = 07:00Z.
        assert due(OFFICE, friday_1700, "2h") == utc(2026, 3, 30, 7, 0)
        assert due(OFFICE, friday_1700, "1d") == utc(2026, 3, 30, 15, 0)

    def test_the_local_day_has_23_hours(self) -> None:
        day = (datetime(2026, 3, 29, tzinfo=BERLIN), datetime(2026, 3, 30, tzinfo=BERLIN))
        assert BERLIN_24X7.elapsed(*day) == timedelta(hours=23)
        # 01:00-04:00 on the wall: 01:00-02:00 CET and 03:00-04:00 CEST.
        assert NIGHT_DESK.elapsed(*day) == timedelta(hours=2)

    def test_hours_are_real_elapsed_time_and_days_are_wall_clock(self) -> None:
        saturday_noon = datetime(2026, 3, 28, 12, 0, tzinfo=BERLIN)  # 11:00Z
        assert due(BERLIN_24X7, saturday_noon, "24h") == utc(2026, 3, 29, 11, 0)  # 13:00 CEST
        assert due(BERLIN_24X7, saturday_noon, "1d") == utc(2026, 3, 29, 10, 0)  # 12:00 CEST

    def test_a_day_landing_in_the_gap_moves_to_the_jump(self) -> None:
        saturday_0230 = datetime(2026, 3, 28, 2, 30, tzinfo=BERLIN)  # 01:30Z
        # Sun 02:30 never shows on the wall; the deadline is the jump, 03:00 CEST.
        assert due(BERLIN_24X7, saturday_0230, "1d") == utc(2026, 3, 29, 1, 0)

    def test_open_time_runs_across_the_gap(self) -> None:
        sunday_0130 = datetime(2026, 3, 29, 1, 30, tzinfo=BERLIN)  # 00:30Z
        # 30 min to 02:00 CET, the clock jumps, 30 min more -> 03:30 CEST = 01:30Z.
        assert due(NIGHT_DESK, sunday_0130, "1h") == utc(2026, 3, 29, 1, 30)


class TestBerlinFallBack:
    """Sun 25 Oct 2026: the clock goes back from 03:00 CEST to 02:00 CET (01:00Z)."""

    def test_the_local_day_has_25_hours(self) -> None:
        day = (datetime(2026, 10, 25, tzinfo=BERLIN), datetime(2026, 10, 26, tzinfo=BERLIN))
        assert BERLIN_24X7.elapsed(*day) == timedelta(hours=25)
        # 01:00-04:00 on the wall shows 02:00-03:00 twice: 4 real hours.
        assert NIGHT_DESK.elapsed(*day) == timedelta(hours=4)

    def test_repeated_hour_counts_twice(self) -> None:
        sunday_0100 = datetime(2026, 10, 24, 23, 0, tzinfo=UTC)  # 01:00 CEST
        assert due(NIGHT_DESK, sunday_0100, "3h") == utc(2026, 10, 25, 2, 0)  # 03:00 CET
        assert due(NIGHT_DESK, sunday_0100, "4h") == utc(2026, 10, 25, 3, 0)  # 04:00 CET

    def test_one_day_is_25_hours_here(self) -> None:
        saturday_noon = datetime(2026, 10, 24, 12, 0, tzinfo=BERLIN)  # 10:00Z
        assert due(BERLIN_24X7, saturday_noon, "1d") == utc(2026, 10, 25, 11, 0)
        assert due(BERLIN_24X7, saturday_noon, "24h") == utc(2026, 10, 25, 10, 0)  # 11:00 CET

    def test_a_day_landing_in_the_repeated_hour_takes_the_first(self) -> None:
        saturday_0230 = datetime(2026, 10, 24, 0, 30, tzinfo=UTC)  # 02:30 CEST
        assert due(BERLIN_24X7, saturday_0230, "1d") == utc(2026, 10, 25, 0, 30)  # 02:30 CEST

    def test_office_hours_keep_their_wall_clock_times(self) -> None:
        friday_1700 = datetime(2026, 10, 23, 17, 0, tzinfo=BERLIN)  # 15:00Z
        assert due(OFFICE, friday_1700, "2h") == utc(2026, 10, 26, 8, 0)  # Mon 09:00 CET


class TestNewYork:
    """2026: EDT from Sun 8 Mar 02:00 EST (07:00Z) to Sun 1 Nov 02:00 EDT (06:00Z)."""

    def test_spring_forward(self) -> None:
        friday_1600 = datetime(2026, 3, 6, 16, 0, tzinfo=NEW_YORK)  # 21:00Z
        # 1 h on Friday, 3 h from Mon 9 Mar 09:00 EDT -> 12:00 EDT = 16:00Z.
        assert due(NY_OFFICE, friday_1600, "4h") == utc(2026, 3, 9, 16, 0)
        assert due(NY_OFFICE, friday_1600, "1d") == utc(2026, 3, 9, 20, 0)  # Mon 16:00 EDT
        day = (datetime(2026, 3, 8, tzinfo=NEW_YORK), datetime(2026, 3, 9, tzinfo=NEW_YORK))
        assert NY_24X7.elapsed(*day) == timedelta(hours=23)

    def test_fall_back(self) -> None:
        friday_1600 = datetime(2026, 10, 30, 16, 0, tzinfo=NEW_YORK)  # 20:00Z
        # 1 h on Friday, 3 h from Mon 2 Nov 09:00 EST -> 12:00 EST = 17:00Z.
        assert due(NY_OFFICE, friday_1600, "4h") == utc(2026, 11, 2, 17, 0)
        day = (datetime(2026, 11, 1, tzinfo=NEW_YORK), datetime(2026, 11, 2, tzinfo=NEW_YORK))
        assert NY_24X7.elapsed(*day) == timedelta(hours=25)
        saturday_noon = datetime(2026, 10, 31, 12, 0, tzinfo=NEW_YORK)  # 16:00Z
        assert due(NY_24X7, saturday_noon, "1d") == utc(2026, 11, 1, 17, 0)  # 12:00 EST

    def test_repeated_hour_on_the_wall(self) -> None:
        saturday_0130 = datetime(2026, 10, 31, 5, 30, tzinfo=UTC)  # 01:30 EDT
        assert due(NY_24X7, saturday_0130, "1d") == utc(2026, 11, 1, 5, 30)  # first 01:30


class TestSaturdayWindow:
    """Mon-fri 08:00-18:00 plus Saturday 10:00-14:00 in Berlin (CET)."""

    def test_hours_continue_on_saturday(self) -> None:
        friday_1700 = datetime(2026, 11, 27, 17, 0, tzinfo=BERLIN)
        assert due(EU_SUPPORT, friday_1700, "2h") == utc(2026, 11, 28, 10, 0)  # Sat 11:00
        assert due(EU_SUPPORT, friday_1700, "6h") == utc(2026, 11, 30, 8, 0)  # Mon 09:00
        monday_0900 = datetime(2026, 11, 30, 9, 0, tzinfo=BERLIN)
        assert EU_SUPPORT.elapsed(friday_1700, monday_0900) == timedelta(hours=6)

    def test_a_day_onto_saturday_keeps_the_time_when_open(self) -> None:
        friday_1100 = datetime(2026, 11, 27, 11, 0, tzinfo=BERLIN)
        assert due(EU_SUPPORT, friday_1100, "1d") == utc(2026, 11, 28, 10, 0)  # Sat 11:00

    def test_a_day_onto_saturday_after_its_closing_moves_to_the_next_opening(self) -> None:
        friday_1730 = datetime(2026, 11, 27, 17, 30, tzinfo=BERLIN)
        # Sat 17:30 is closed -> the next opening, Mon 08:00 CET.
        assert due(EU_SUPPORT, friday_1730, "1d") == utc(2026, 11, 30, 7, 0)
        friday_0830 = datetime(2026, 11, 27, 8, 30, tzinfo=BERLIN)
        # Sat 08:30 is before Saturday's opening -> Sat 10:00 CET.
        assert due(EU_SUPPORT, friday_0830, "1d") == utc(2026, 11, 28, 9, 0)

    def test_one_week_is_six_open_days(self) -> None:
        assert EU_SUPPORT.open_days_per_week == 6
        monday_0900 = datetime(2026, 11, 23, 9, 0, tzinfo=BERLIN)
        assert due(EU_SUPPORT, monday_0900, "1w") == utc(2026, 11, 30, 8, 0)


class TestKolkata:
    """Mon-fri 09:30-18:00 IST (UTC+05:30); local midnight is 18:30Z the day before."""

    def test_open_time_in_a_half_hour_zone(self) -> None:
        monday_0930 = utc(2026, 11, 30, 4, 0)
        assert due(INDIA, monday_0930, "8h30m") == utc(2026, 11, 30, 12, 30)  # 18:00 IST
        friday_1730 = utc(2026, 12, 4, 12, 0)
        assert due(INDIA, friday_1730, "1h") == utc(2026, 12, 7, 4, 30)  # Mon 10:00 IST
        assert due(INDIA, friday_1730, "1d") == utc(2026, 12, 7, 12, 0)  # Mon 17:30 IST

    def test_utc_sunday_evening_is_already_monday_in_india(self) -> None:
        sunday_2000z = utc(2026, 11, 29, 20, 0)  # Mon 01:30 IST
        assert INDIA.next_open(sunday_2000z) == utc(2026, 11, 30, 4, 0)
        assert due(INDIA, sunday_2000z, "1d") == utc(2026, 12, 1, 4, 0)  # Tue 09:30 IST


class TestAlways:
    """24x7 in UTC is plain clock arithmetic."""

    def test_plain_arithmetic(self) -> None:
        start = datetime(2026, 3, 29, 0, 30, tzinfo=BERLIN)  # 23:30Z the day before
        # Python's aware `start + timedelta` is wall-clock arithmetic, so compare in UTC.
        expected = start.astimezone(UTC) + timedelta(days=9, hours=3)
        assert ALWAYS.add(start, parse_duration("1w2d3h")) == expected == utc(2026, 4, 7, 2, 30)
        assert ALWAYS.elapsed(start, utc(2026, 3, 29, 4, 30)) == timedelta(hours=5)
        assert ALWAYS.is_open(start)
        assert ALWAYS.open_days_per_week == 7
        assert BusinessCalendar.always() is ALWAYS

    def test_result_is_utc(self) -> None:
        result = OFFICE.add(datetime(2026, 11, 27, 17, 30, tzinfo=BERLIN), timedelta(minutes=5))
        assert result.tzinfo is UTC


class TestEdges:
    """Zero durations, naive datetimes, unknown zones, mixed durations."""

    def test_zero_duration_is_the_start_even_when_closed(self) -> None:
        saturday = utc(2026, 11, 28, 12, 0)
        assert OFFICE.add(saturday, Duration()) == saturday
        assert OFFICE.add(saturday, timedelta(0)) == saturday

    def test_days_then_hours(self) -> None:
        friday_1730 = datetime(2026, 11, 27, 17, 30, tzinfo=BERLIN)
        # +1d -> Mon 17:30, +1h -> 30 min Monday, 30 min Tuesday -> Tue 08:30 CET.
        assert due(OFFICE, friday_1730, "1d1h") == utc(2026, 12, 1, 7, 30)

    def test_naive_datetimes_are_refused(self) -> None:
        with pytest.raises(ValueError, match="naive datetime"):
            OFFICE.add(datetime(2026, 11, 27, 17, 30), timedelta(hours=1))

    def test_unknown_zone(self) -> None:
        with pytest.raises(ValueError, match="unknown time zone 'Europe/Berlinn'"):
            BusinessCalendar("Europe/Berlinn")
        with pytest.raises(ValueError, match="unknown time zone"):
            BusinessCalendar("../etc/passwd")

    def test_holidays_must_be_dates(self) -> None:
        with pytest.raises(ValueError, match="whole dates"):
            BusinessCalendar("UTC", None, {utc(2026, 12, 24)})

    def test_negative_timedelta_is_refused(self) -> None:
        with pytest.raises(ValueError, match="negative"):
            OFFICE.add(utc(2026, 1, 1), timedelta(minutes=-1))

    def test_elapsed_backwards_is_zero(self) -> None:
        assert OFFICE.elapsed(utc(2026, 11, 30, 12), utc(2026, 11, 30, 9)) == timedelta(0)

    def test_holiday_on_a_24x7_calendar_closes_the_local_day(self) -> None:
        calendar = BusinessCalendar("Europe/Berlin", None, {date(2026, 12, 25)})
        christmas_eve_2300 = datetime(2026, 12, 24, 23, 0, tzinfo=BERLIN)
        assert calendar.add(christmas_eve_2300, timedelta(hours=2)) == utc(2026, 12, 26, 0, 0)

    def test_consecutive_holidays_on_a_one_day_week(self) -> None:
        mondays = BusinessCalendar(
            "Europe/Berlin",
            parse_hours({"mon": ["09:00-10:00"]}),
            parse_holidays(["2026-11-30", "2026-12-07", "2026-12-14", "2026-12-21"]),
        )
        monday_0930 = datetime(2026, 11, 23, 9, 30, tzinfo=BERLIN)
        # 30 min on 23 Nov, four Monday holidays, then Mon 28 Dec 09:00 + 30 min.
        assert due(mondays, monday_0930, "1h") == utc(2026, 12, 28, 8, 30)
        assert due(mondays, monday_0930, "1d") == utc(2026, 12, 28, 8, 30)
        assert mondays.next_open(utc(2026, 11, 24)) == utc(2026, 12, 28, 8, 0)

    def test_equality(self) -> None:
        same = BusinessCalendar(
            "Europe/Berlin",
            parse_hours({"mon-fri": "08:00-18:00"}),
            {date(2026, 12, 24), date(2026, 12, 25), date(2026, 12, 26)},
        )
        assert same == OFFICE
        assert hash(same) == hash(OFFICE)
        assert same != EU_SUPPORT
