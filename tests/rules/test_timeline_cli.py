"""`escalator rules test` with timelines: steps on a moving clock through the worker's logic."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from escalator.commands.rules import app

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples" / "rules"
runner = CliRunner()

VIP = """\
tests:
  - name: vip
    at: 2027-01-04T09:00:00Z
    message: {channel: twitter, text: "Where is my order?", customer: {tier: platinum}}
    expect: {queue: social, sla_policy: vip}
    timeline:
"""


def _run(tmp_path: Path, steps: str, *extra: str) -> tuple[int, str]:
    tests = tmp_path / "tests.yaml"
    tests.write_text(VIP + steps)
    result = runner.invoke(app, ["test", str(EXAMPLES), str(tests), *extra])
    return result.exit_code, result.output


def test_the_example_organisation_timelines_pass() -> None:
    result = runner.invoke(app, ["test", str(EXAMPLES), str(EXAMPLES / "tests.yaml"), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    timelines = [test for test in report["tests"] if "steps" in test]
    assert len(timelines) >= 6
    assert all(step["passed"] for test in timelines for step in test["steps"])


def test_a_passing_timeline_reports_each_step_in_json(tmp_path: Path) -> None:
    code, output = _run(
        tmp_path,
        "      - {at: +5m, expect_events: [case.escalated], expect: {queue: duty-managers}}\n"
        "      - {at: 2027-01-04T09:30:00Z, expect_events: [sla.breached]}\n",
        "--json",
    )
    assert code == 0, output
    test = json.loads(output)["tests"][0]
    assert test["passed"] is True
    # the first message's events belong to the message, not to the first step
    assert test["message_events"][:3] == ["case.opened", "message.appended", "case.routed"]
    first, second = test["steps"]
    assert first["at"] == "2027-01-04T09:05:00Z" and first["written"] == "+5m"
    assert first["events"] == ["case.escalated", "case.updated"]
    assert first["case"]["queue"] == "duty-managers"
    assert second["at"] == "2027-01-04T09:30:00Z"
    assert "sla.breached" in second["events"] and "case.opened" not in second["events"]
    assert second["clocks"]["first_response"]["state"] == "breached"


def test_a_missing_event_fails_with_the_step_both_lists_and_the_clocks(tmp_path: Path) -> None:
    code, output = _run(tmp_path, "      - {at: +10m, expect_events: [sla.warning]}\n")
    assert code == 1
    assert "FAIL vip" in output
    assert "step 1 at +10m (2027-01-04T09:10:00Z, " in output
    assert (
        "events: expected [sla.warning] in this order, got "
        "[case.escalated, case.updated, case.escalated, case.updated]"
    ) in output
    assert "clocks at 2027-01-04T09:10:00Z:" in output
    assert "first_response: running, due 2027-01-04T09:30:00Z, warn 2027-01-04T09:15:00Z" in output
    assert "1 tests: 0 passed, 1 failed" in output


def test_events_out_of_order_fail(tmp_path: Path) -> None:
    step = "      - {at: +30m, expect_events: [sla.breached, sla.warning]}\n"
    code, output = _run(tmp_path, step)
    assert code == 1
    assert "events: expected [sla.breached, sla.warning] in this order" in output


def test_an_empty_list_fails_when_anything_was_written(tmp_path: Path) -> None:
    code, output = _run(tmp_path, "      - {at: +5m, expect_events: []}\n")
    assert code == 1
    assert "events: expected [] (nothing written), got [case.escalated, case.updated]" in output


def test_an_empty_list_passes_when_nothing_was_written(tmp_path: Path) -> None:
    code, output = _run(tmp_path, "      - {at: +4m, expect_events: []}\n")
    assert code == 0, output


def test_an_omitted_expect_events_asserts_nothing(tmp_path: Path) -> None:
    code, output = _run(tmp_path, "      - {at: +30m}\n")
    assert code == 0, output


def test_the_case_as_it_stands_is_compared(tmp_path: Path) -> None:
    code, output = _run(
        tmp_path,
        "      - at: +30m\n"
        "        expect: {queue: social, priority: high, sla_state: {first_response: running}}\n",
    )
    assert code == 1
    assert "queue: expected social, got duty-managers" in output
    assert "priority: expected high, got urgent" in output
    assert "sla_state.first_response: expected running, got breached" in output
    assert "events written: [case.escalated, case.updated, case.escalated" in output


def test_an_action_is_applied_before_a_deadline_of_the_same_moment(tmp_path: Path) -> None:
    # claiming at the moment the unclaimed step is due stops it, as the worker's timer
    # lateness lets an action stamped at a deadline reach the case first
    code, output = _run(
        tmp_path,
        "      - at: +5m\n"
        "        action: {type: claim, agent_id: ana}\n"
        "        expect_events: []\n",
    )
    assert code == 1
    assert "got [case.claimed, case.updated]" in output
    code, output = _run(
        tmp_path,
        "      - at: +5m\n"
        "        action: {type: claim, agent_id: ana}\n"
        "        expect_events: [case.claimed]\n"
        "        expect: {assignee: ana, queue: social}\n"
        "      - {at: +20m, expect_events: [sla.warning]}\n",
    )
    assert code == 0, output


def test_a_customer_message_in_a_step_reroutes_and_retargets(tmp_path: Path) -> None:
    code, output = _run(
        tmp_path,
        "      - at: +1m\n"
        "        message: {text: 'Worst service ever, I am furious and disappointed'}\n"
        "        expect_events: [message.appended]\n"
        "        expect:\n"
        "          tags: [vip, social, angry]\n"
        "          sla: {first_response: 2027-01-04T09:30:00Z}\n",
    )
    assert code == 0, output


def test_a_step_back_in_time_is_a_positioned_error(tmp_path: Path) -> None:
    code, output = _run(
        tmp_path,
        "      - {at: +1h}\n      - {at: 2027-01-04T09:30:00Z}\n",
    )
    assert code == 2
    assert "tests.yaml:8:14: step 2 at 2027-01-04T09:30:00Z goes back in time" in output


def test_an_invalid_action_is_a_positioned_error(tmp_path: Path) -> None:
    code, output = _run(tmp_path, "      - {at: +5m, action: {type: status}}\n")
    assert code == 2
    assert "tests.yaml:7:" in output and "a status action needs `status`" in output


def test_an_invalid_offset_is_a_positioned_error(tmp_path: Path) -> None:
    code, output = _run(tmp_path, "      - {at: +5m}\n      - {at: +5x}\n")
    assert code == 2
    assert "tests.yaml:8:14: 'at': invalid duration '5x': unknown unit 'x'" in output


def test_a_timeline_test_may_not_carry_case_facts(tmp_path: Path) -> None:
    tests = tmp_path / "tests.yaml"
    tests.write_text("tests:\n  - name: x\n    case: {contacts: 3}\n    timeline: [{at: +1m}]\n")
    result = runner.invoke(app, ["test", str(EXAMPLES), str(tests)])
    assert result.exit_code == 2
    assert "builds its case from its own messages" in result.output
