"""Rule durations: parsing, error messages, addition and the canonical spelling."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rules.calendar import Duration, parse_duration


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30m", Duration(open_time=timedelta(minutes=30))),
        ("1h30m", Duration(open_time=timedelta(hours=1, minutes=30))),
        ("2d", Duration(open_days=2)),
        ("90s", Duration(open_time=timedelta(seconds=90))),
        ("1w", Duration(open_weeks=1)),
        ("4h", Duration(open_time=timedelta(hours=4))),
        ("1w2d3h4m5s", Duration(timedelta(hours=3, minutes=4, seconds=5), 2, 1)),
        ("1d4h", Duration(open_time=timedelta(hours=4), open_days=1)),
        ("36h", Duration(open_time=timedelta(hours=36))),
        (" 2H ", Duration(open_time=timedelta(hours=2))),
        ("0s", Duration()),
    ],
)
def test_parses(text: str, expected: Duration) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty duration"),
        ("30", "30 has no unit"),
        ("1x", "unknown unit 'x'"),
        ("1.5h", "1h30m rather than 1.5h"),
        ("-5m", "expected a whole number at '-5m'"),
        ("h", "expected a whole number at 'h'"),
        ("30m1h", "hours \\(h\\) must come once, before smaller units"),
        ("1h1h", "hours \\(h\\) must come once"),
        ("1h 30m", "expected a whole number at ' 30m'"),
        ("P1D", "expected a whole number at 'P1D'"),
        ("99999999999999h", "too long"),
    ],
)
def test_rejects_with_a_clear_message(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_duration(text)


def test_rejects_non_strings() -> None:
    with pytest.raises(ValueError, match="must be a string"):
        parse_duration(30)  # type: ignore[arg-type]


def test_describe_is_canonical() -> None:
    assert parse_duration("90s").describe() == "1m30s"
    assert parse_duration("1d25h").describe() == "1d25h"
    assert str(parse_duration("1w")) == "1w"
    assert Duration().describe() == "0s"


def test_add() -> None:
    assert parse_duration("1h") + parse_duration("30m") == parse_duration("1h30m")
    assert parse_duration("1d") + parse_duration("1w4h") == parse_duration("1w1d4h")
    assert parse_duration("1h") + timedelta(minutes=5) == parse_duration("1h5m")
    assert timedelta(minutes=5) + parse_duration("1h") == parse_duration("1h5m")


def test_of_and_is_zero() -> None:
    assert Duration.of(timedelta(hours=2)) == parse_duration("2h")
    assert Duration.of(parse_duration("2d")) == parse_duration("2d")
    assert Duration().is_zero
    assert not parse_duration("1s").is_zero


def test_wall_clock() -> None:
    assert parse_duration("1w2d3h").wall_clock() == timedelta(days=9, hours=3)
    assert parse_duration("90s").wall_clock() == timedelta(seconds=90)


def test_invalid_values_are_refused() -> None:
    with pytest.raises(ValueError, match="negative"):
        Duration(open_time=timedelta(minutes=-1))
    with pytest.raises(ValueError, match="negative"):
        Duration(open_days=-1)
    with pytest.raises(ValueError, match="whole seconds"):
        Duration(open_time=timedelta(milliseconds=1))


durations = st.builds(
    Duration,
    open_time=st.integers(0, 10**7).map(lambda s: timedelta(seconds=s)),
    open_days=st.integers(0, 400),
    open_weeks=st.integers(0, 60),
)


@settings(max_examples=200, deadline=None)
@given(durations)
def test_describe_round_trips(duration: Duration) -> None:
    assert parse_duration(duration.describe()) == duration
    assert parse_duration(str(duration)) == duration


@settings(max_examples=200, deadline=None)
@given(durations, durations, durations)
def test_addition_is_commutative_and_associative(a: Duration, b: Duration, c: Duration) -> None:
    assert a + b == b + a
    assert (a + b) + c == a + (b + c)
    assert a + Duration() == a
