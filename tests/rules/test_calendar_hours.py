"""Parsing a calendar's `hours:` into a weekly schedule, and its error messages."""

from __future__ import annotations

from datetime import timedelta

import pytest

from rules.calendar import OpenHours, OpenRange, WeeklyHours, parse_hours


def minutes(text: str) -> int:
    hour, minute = text.split(":")
    return int(hour) * 60 + int(minute)


def test_design_example() -> None:
    hours = parse_hours({"mon-fri": ["08:00-18:00"], "sat": ["10:00-14:00"]})
    office = (OpenRange(minutes("08:00"), minutes("18:00")),)
    assert hours.days[:5] == (office,) * 5
    assert hours.ranges(5) == (OpenRange(minutes("10:00"), minutes("14:00")),)
    assert hours.ranges(6) == ()
    assert hours.open_weekdays == 6
    assert hours.weekly_open_time == timedelta(hours=54)
    assert hours.describe() == {
        "mon": ["08:00-18:00"],
        "tue": ["08:00-18:00"],
        "wed": ["08:00-18:00"],
        "thu": ["08:00-18:00"],
        "fri": ["08:00-18:00"],
        "sat": ["10:00-14:00"],
    }


def test_several_ranges_a_day_are_sorted() -> None:
    hours = parse_hours({"mon": ["13:00-18:00", "08:00-12:00"]})
    assert [str(r) for r in hours.ranges(0)] == ["08:00-12:00", "13:00-18:00"]


def test_touching_ranges_and_keys_combine() -> None:
    hours = parse_hours({"mon-fri": "08:00-12:00", "fri": ["12:00-24:00"], "sat": "00:00-02:00"})
    assert [str(r) for r in hours.ranges(4)] == ["08:00-12:00", "12:00-24:00"]
    assert [str(r) for r in hours.ranges(5)] == ["00:00-02:00"]


@pytest.mark.parametrize(
    ("key", "weekdays"),
    [
        ("mon", [0]),
        ("Sunday", [6]),
        ("mon-fri", [0, 1, 2, 3, 4]),
        ("sun-thu", [0, 1, 2, 3, 6]),
        ("fri-mon", [0, 4, 5, 6]),
        ("mon,wed, fri", [0, 2, 4]),
        ("mon-sun", [0, 1, 2, 3, 4, 5, 6]),
    ],
)
def test_day_keys(key: str, weekdays: list[int]) -> None:
    hours = parse_hours({key: ["09:00-17:00"]})
    assert [d for d in range(7) if hours.ranges(d)] == weekdays


def test_24x7() -> None:
    assert parse_hours("24x7") == WeeklyHours.always()
    assert parse_hours({"mon-sun": ["00:00-24:00"]}).is_always
    assert WeeklyHours.always().describe() == "24x7"
    assert WeeklyHours.always().open_weekdays == 7
    assert OpenHours is WeeklyHours


def test_empty_list_means_closed() -> None:
    hours = parse_hours({"mon-fri": ["09:00-17:00"], "wed": []})
    assert hours.ranges(2) == (OpenRange(minutes("09:00"), minutes("17:00")),)
    assert parse_hours({"mon": ["09:00-17:00"], "tue": []}).ranges(1) == ()


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            {"mon-fri": ["08:00-12:00", "11:00-14:00"]},
            "on mon the ranges 08:00-12:00 and 11:00-14:00 overlap \\(from 'mon-fri'\\)",
        ),
        (
            {"mon-fri": ["08:00-18:00"], "wed": ["17:00-20:00"]},
            "on wed the ranges 08:00-18:00 and 17:00-20:00 overlap \\(from 'mon-fri' and 'wed'\\)",
        ),
        ({"sat": ["10:00-14:00", "10:00-14:00"]}, "on sat the ranges 10:00-14:00 and 10:00-14:00"),
        ({"mnday": ["08:00-12:00"]}, "unknown day 'mnday' in 'mnday'"),
        ({"mon-fry": ["08:00-12:00"]}, "unknown day 'fry' in 'mon-fry'"),
        ({"mon-wed-fri": ["08:00-12:00"]}, "too many '-'"),
        ({"mon": ["18:00-08:00"]}, "mon: in '18:00-08:00' the end is not after the start"),
        ({"mon": ["09:00-09:00"]}, "the end is not after the start"),
        ({"mon": ["24:00-24:00"]}, "outside 00:00 to 23:59"),
        ({"mon": ["08:00-24:30"]}, "outside 00:00 to 24:00"),
        ({"mon": ["08:60-12:00"]}, "outside 00:00 to 23:59"),
        ({"mon": ["8-17"]}, "'8-17' is not a range such as 08:00-18:00"),
        ({"mon": [800]}, "800 is not a range"),
        ({"mon": {"from": "08:00"}}, "expected a list of ranges"),
        ({"": ["08:00-12:00"]}, "a day key must be a day name"),
        ({}, "never open"),
        ({"mon": []}, "never open"),
        ("always", "hours must be 24x7 or a mapping"),
        (["mon-fri"], "hours must be a mapping"),
    ],
)
def test_rejects_with_a_clear_message(spec: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_hours(spec)  # type: ignore[arg-type]
