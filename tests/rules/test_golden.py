"""Golden fixtures: good files compile cleanly; bad files report exactly their expected lines."""

from __future__ import annotations

from pathlib import Path

import pytest

import rules
from tests.rules.golden import BAD, GOOD, bad_fixtures, fixture_sources, missing_file, problem_lines


@pytest.mark.parametrize("path", sorted(GOOD.glob("*.yaml")), ids=lambda p: p.name)
def test_good_file_compiles_without_warnings(path: Path) -> None:
    ruleset = rules.compile_sources(fixture_sources(path), read_file=missing_file)
    assert ruleset.warnings == ()
    assert ruleset.version.startswith("sha256:")
    assert len(ruleset.version) == len("sha256:") + 12


@pytest.mark.parametrize("fixture", bad_fixtures(), ids=lambda p: p.name)
def test_bad_file_reports_expected_lines(fixture: Path) -> None:
    source = fixture if fixture.is_dir() else fixture.with_suffix(".yaml")
    expected = fixture.with_suffix(".expected").read_text().splitlines()
    assert problem_lines(source) == expected


def test_every_bad_yaml_has_an_expected_file() -> None:
    for path in BAD.glob("*.yaml"):
        assert path.with_suffix(".expected").exists(), path


def test_errors_carry_file_line_col() -> None:
    with pytest.raises(rules.RuleSetError) as caught:
        rules.compile_sources({"x.yaml": "routes:\n  queue: nowhere\n"})
    (problem,) = caught.value.problems
    assert (problem.file, problem.line, problem.col) == ("x.yaml", 2, 10)
    assert problem.message == "undefined queue 'nowhere'"
    assert problem.severity == "error"


def test_version_is_a_content_hash() -> None:
    text = "queues: {general: {}}\nroutes: {queue: general}\n"
    first = rules.compile_sources({"a/rules.yaml": text}).version
    assert rules.compile_sources({"b/rules.yaml": text}).version == first
    assert rules.compile_sources({"a/rules.yaml": text + "# changed\n"}).version != first


def test_holidays_file_is_read_through_the_injected_reader(tmp_path: Path) -> None:
    ics = "\r\n".join(
        [
            "BEGIN:VCALENDAR",
            "VERSION:2.0",
            "PRODID:-//test//EN",
            "BEGIN:VEVENT",
            "UID:1",
            "DTSTART;VALUE=DATE:20270104",
            "SUMMARY:Closed",
            "END:VEVENT",
            "END:VCALENDAR",
            "",
        ]
    )
    seen: list[str] = []

    def reader(name: str) -> str:
        seen.append(name)
        return ics

    text = (
        "calendars:\n  office:\n    timezone: UTC\n    hours: {mon-fri: '09:00-17:00'}\n"
        "    holidays_file: holidays.ics\n"
        "queues: {general: {}}\nroutes: {queue: general}\n"
    )
    ruleset = rules.compile_sources({"conf/rules.yaml": text}, read_file=reader)
    assert seen == ["conf/holidays.ics"]
    from datetime import date

    assert date(2027, 1, 4) in ruleset.calendars["office"].holidays


def test_default_ruleset_routes_everything_to_general() -> None:
    ruleset = rules.default_ruleset()
    assert set(ruleset.queues) == {"general"}
    assert ruleset.sla_policies == {}
