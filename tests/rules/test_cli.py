"""`escalator rules` through typer's CliRunner: check, explain, test and schema."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from escalator.commands.rules import app
from tests.rules.golden import BAD, GOOD

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples" / "rules"
runner = CliRunner()


def test_check_valid_file_prints_a_summary() -> None:
    result = runner.invoke(app, ["check", str(GOOD / "design.yaml")])
    assert result.exit_code == 0, result.output
    assert result.output.startswith(
        "OK: 5 routes, 7 queues, 2 SLA policies, 2 calendars, 1 escalations (sha256:"
    )


def test_check_folder_merges_files() -> None:
    result = runner.invoke(app, ["check", str(EXAMPLES)])
    assert result.exit_code == 0, result.output
    assert "19 routes, 12 queues, 4 SLA policies, 4 calendars, 3 escalations" in result.output


def test_check_invalid_file_prints_every_error_and_exits_1(tmp_path: Path) -> None:
    source = BAD / "unknown-keys.yaml"
    target = tmp_path / "rules.yaml"
    target.write_text(source.read_text())
    result = runner.invoke(app, ["check", str(target)])
    assert result.exit_code == 1
    expected = (BAD / "unknown-keys.expected").read_text().replace("unknown-keys.yaml", str(target))
    assert result.output == expected


def test_check_prints_warnings_then_the_summary() -> None:
    result = runner.invoke(app, ["check", str(BAD / "unreachable.yaml")])
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert lines[0].endswith(
        "unreachable.yaml:8:7: warning: route 'never' can never match: 'everything' (line 6) "
        "matches every message and does not continue"
    )
    assert lines[1].startswith("OK: 2 routes")


def test_check_missing_path_exits_2(tmp_path: Path) -> None:
    result = runner.invoke(app, ["check", str(tmp_path / "nope.yaml")])
    assert result.exit_code == 2


def _write(tmp_path: Path, name: str, data: object) -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return path


MESSAGE = {
    "channel": "twitter",
    "external_id": "1",
    "sender": "@ada",
    "text": "Worst service ever, I am furious",
    "sent_at": "2027-01-04T09:00:00Z",
    "customer": {"tier": "vip"},
}


def test_explain_json_prints_one_decision_object(tmp_path: Path) -> None:
    message = _write(tmp_path, "msg.json", MESSAGE)
    result = runner.invoke(app, ["explain", str(EXAMPLES), "--message", str(message), "--json"])
    assert result.exit_code == 0, result.output
    decision = json.loads(result.output)
    assert decision["queue"] == "social"
    assert decision["priority"] == "high"
    assert decision["matched"] == ["vip", "angry-social"]
    assert decision["sla_policy"] == "vip"
    assert decision["calendar"] == "always"
    assert decision["sla"]["first_response"] == {"due_at": "2027-01-04T09:30:00Z"}
    assert decision["escalations"][0] == {
        "on": "warning",
        "notify": ["account-managers", "team-leads"],
    }
    for key in (
        "queue",
        "priority",
        "tags",
        "sla_policy",
        "calendar",
        "matched",
        "sla",
        "escalations",
    ):
        assert key in decision


def test_explain_with_case_and_at(tmp_path: Path) -> None:
    message = _write(
        tmp_path, "msg.json", {**MESSAGE, "channel": "email", "text": "where is it", "customer": {}}
    )
    case = _write(
        tmp_path, "case.json", {"contacts": 3, "age": "2d", "agent_replies": 1, "status": "open"}
    )
    result = runner.invoke(
        app,
        [
            "explain",
            str(EXAMPLES),
            "--message",
            str(message),
            "--case",
            str(case),
            "--at",
            "2027-01-04T10:00:00+01:00",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    decision = json.loads(result.output)
    assert decision["queue"] == "tier2"
    assert decision["sla"] == {
        "next_response": {"due_at": "2027-01-04T13:00:00Z"},
        "resolution": {"due_at": "2027-01-05T09:00:00Z"},
    }


def test_explain_json_rounds_a_sub_second_due_time_up_to_the_second(tmp_path: Path) -> None:
    # The documented format has whole seconds; a due time between two seconds is shown as
    # the next one, never as an instant before the deadline.
    message = _write(
        tmp_path, "msg.json", {**MESSAGE, "channel": "email", "text": "where is it", "customer": {}}
    )
    case = _write(
        tmp_path, "case.json", {"contacts": 3, "age": "2d", "agent_replies": 1, "status": "open"}
    )
    at = "2027-01-04T10:00:00.250+01:00"
    args = ["explain", str(EXAMPLES), "--message", str(message), "--case", str(case)]
    result = runner.invoke(app, [*args, "--at", at, "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["sla"]["next_response"] == {"due_at": "2027-01-04T13:00:01Z"}


def test_explain_human_output_shows_each_route_and_the_deciding_condition(tmp_path: Path) -> None:
    message = _write(tmp_path, "msg.json", MESSAGE)
    result = runner.invoke(app, ["explain", str(EXAMPLES), "--message", str(message)])
    assert result.exit_code == 0, result.output
    assert "no    legal-threat: none of: text has any of" in result.output
    assert "MATCH vip: customer.tier in [platinum, vip] (was 'vip')" in result.output
    assert (
        "MATCH angry-social: channel in [facebook, instagram, twitter] (was 'twitter') "
        "and sentiment below -0.4" in result.output
    )
    assert "skip  social: not tried: 'angry-social' matched first" in result.output
    assert "queue: social" in result.output


def test_rule_tests_of_the_example_pass() -> None:
    result = runner.invoke(app, ["test", str(EXAMPLES), str(EXAMPLES / "tests.yaml")])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-1] == "34 tests: 34 passed, 0 failed"


def test_failing_rule_test_prints_a_diff_and_exits_1(tmp_path: Path) -> None:
    tests = tmp_path / "tests.yaml"
    tests.write_text(
        "tests:\n"
        "  - name: refund to general\n"
        "    message: {text: refund please}\n"
        "    expect: {queue: general, tags: [billing], matched: [billing]}\n"
        "  - name: passes\n"
        "    message: {text: refund please}\n"
        "    expect: {queue: billing}\n"
    )
    result = runner.invoke(app, ["test", str(EXAMPLES), str(tests)])
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert lines[0] == f"FAIL refund to general  ({tests}:2:5)"
    assert lines[1] == "  queue: expected general, got billing"
    assert lines[2].startswith("PASS passes")
    assert lines[-1] == "2 tests: 1 passed, 1 failed"
    as_json = runner.invoke(app, ["test", str(EXAMPLES), str(tests), "--json"])
    report = json.loads(as_json.output)
    assert (report["passed"], report["failed"]) == (1, 1)
    assert report["tests"][0]["differences"] == [
        {"key": "queue", "expected": "general", "actual": "billing"}
    ]


def test_invalid_tests_file_reports_positions(tmp_path: Path) -> None:
    tests = tmp_path / "tests.yaml"
    tests.write_text("tests:\n  - name: x\n    mesage: {}\n    expect: {queue: general}\n")
    result = runner.invoke(app, ["test", str(EXAMPLES), str(tests)])
    assert result.exit_code == 2
    assert f"{tests}:3:5: unknown key 'mesage'" in result.output


def test_schema_is_json_schema_and_matches_the_committed_copy() -> None:
    result = runner.invoke(app, ["schema"])
    assert result.exit_code == 0
    schema = json.loads(result.output)
    assert schema["title"] == "Escalator rule file"
    assert set(schema["properties"]) >= {"calendars", "sla", "escalations", "queues", "routes"}
    assert json.loads((EXAMPLES / "rules.schema.json").read_text()) == schema
