"""Ops teams test paging like any rule: `escalator rules test` timelines page, acknowledge and
escalate through the worker's own code."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from escalator.commands.rules import app

HERE = Path(__file__).parent
RULES = HERE / "paging_rules.yaml"
TIMELINE = HERE / "paging_timeline.yaml"


def test_a_timeline_pages_until_acknowledged_and_an_agent_escalates() -> None:
    result = CliRunner().invoke(app, ["test", str(RULES), str(TIMELINE)])
    assert result.exit_code == 0, result.output
    assert "2 tests: 2 passed, 0 failed" in result.output


def test_without_the_acknowledgement_the_pages_go_on(tmp_path: Path) -> None:
    text = TIMELINE.read_text().replace(
        "action: {type: acknowledge, agent_id: ana}\n"
        "        expect_events: [case.acknowledged_by_agent]",
        "expect_events: []",
    )
    assert text != TIMELINE.read_text()
    tests = tmp_path / "tests.yaml"
    tests.write_text(text)
    result = CliRunner().invoke(app, ["test", str(RULES), str(tests)])
    assert result.exit_code == 1, result.output
    assert "1 failed" in result.output
    assert "case.escalated" in result.output
