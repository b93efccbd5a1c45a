"""`escalator rules backtest --messages`: recorded history replayed under two rule sets.

The history here is small and written by hand, so each expected difference is known: a
candidate that moves billing to tier 2 moves exactly the billing cases; one that gives
normal cases a 1-hour first response makes the unanswered ones breach (by 16:00 UTC, none
breaches the 8 business hours of the example rules), and the answered one not.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from escalator.cli import app
from escalator.rules_backtest import Backtest, from_files, run_backtest
from rules import compile_sources
from schemas.ids import case_id_for
from streams import backtest as backtest_module
from streams.backtest import in_order, replay, replay_both
from streams.case_state import CaseState
from streams.simulation import SimulatedWorker

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples" / "rules"
MONDAY = datetime(2027, 1, 4, 9, 0, tzinfo=UTC)  # 10:00 in Berlin: business hours 07-17 UTC
runner = CliRunner()


def _message(number: int, text: str, minutes: int = 0, tier: str = "standard") -> dict[str, Any]:
    return {
        "channel": "email",
        "external_id": f"m-{number}",
        "sender": f"customer{number}@example.com",
        "text": text,
        "sent_at": (MONDAY + timedelta(minutes=minutes)).isoformat(),
        "customer": {"id": f"cust-{number}", "tier": tier},
    }


def _case(number: int) -> str:
    return case_id_for(f"cust-{number}", f"email:m-{number}")


HISTORY = [
    _message(1, "I was charged twice, please refund", 0),
    _message(2, "Where is my order?", 5),
    _message(3, "My invoice is wrong", 10),
    _message(4, "Can I change my delivery address?", 15),
]
ACTIONS = [  # case 2 gets an answer 30 minutes in; the others none
    {
        "action_id": "a1",
        "case_id": _case(2),
        "agent_id": "ana",
        "type": "claim",
        "at": "2027-01-04T09:20:00Z",
    },
    {
        "action_id": "a2",
        "case_id": _case(2),
        "agent_id": "ana",
        "type": "reply",
        "text": "On its way",
        "at": "2027-01-04T09:35:00Z",
    },
]


def _rules(folder: Path, *, replace: tuple[str, str] | None = None) -> Path:
    folder.mkdir()
    for source in EXAMPLES.glob("*.yaml"):
        if source.name == "tests.yaml":
            continue
        text = source.read_text()
        if replace is not None and replace[0] in text:
            text = text.replace(*replace)
        (folder / source.name).write_text(text)
    return folder


@pytest.fixture
def history(tmp_path: Path) -> tuple[Path, Path]:
    messages, actions = tmp_path / "messages.jsonl", tmp_path / "actions.jsonl"
    messages.write_text("".join(json.dumps(m) + "\n" for m in HISTORY))
    actions.write_text("".join(json.dumps(a) + "\n" for a in ACTIONS))
    return messages, actions


def _backtest(candidate: Path, baseline: Path, history: tuple[Path, Path], *extra: str) -> Any:
    messages, actions = history
    result = runner.invoke(
        app,
        [
            "rules",
            "backtest",
            str(candidate),
            "--baseline",
            str(baseline),
            "--messages",
            str(messages),
            "--actions",
            str(actions),
            "--to",
            "2027-01-04T16:00:00Z",
            *extra,
        ],
    )
    assert result.exit_code == 0, result.output
    return result.output


def test_the_same_rules_change_nothing(tmp_path: Path, history: tuple[Path, Path]) -> None:
    baseline = _rules(tmp_path / "baseline")
    report = json.loads(_backtest(baseline, baseline, history, "--json"))
    assert report["cases"] == 4
    assert report["changed"] == []
    assert report["breaches"]["before"] == report["breaches"]["after"]


def test_moving_billing_moves_exactly_the_billing_cases(
    tmp_path: Path, history: tuple[Path, Path]
) -> None:
    baseline = _rules(tmp_path / "baseline")
    candidate = _rules(
        tmp_path / "candidate", replace=("      queue: billing\n", "      queue: tier2\n")
    )
    report = json.loads(_backtest(candidate, baseline, history, "--json"))
    moved = {
        c["case_id"]: (c["before"], c["after"]) for c in report["changed"] if c["field"] == "queue"
    }
    assert moved == {_case(1): ("billing", "tier2"), _case(3): ("billing", "tier2")}
    assert report["queue_changes"]["cases"] == 2
    assert report["queue_changes"]["moves"] == [{"from": "billing", "to": "tier2", "cases": 2}]


def test_a_tighter_first_response_gains_breaches_for_the_unanswered_only(
    tmp_path: Path, history: tuple[Path, Path]
) -> None:
    baseline = _rules(tmp_path / "baseline")
    candidate = _rules(
        tmp_path / "candidate",
        replace=("normal: {first_response: 8h,", "normal: {first_response: 1h,"),
    )
    report = json.loads(_backtest(candidate, baseline, history, "--json"))
    gained = {
        c["case_id"]: c["after"]
        for c in report["changed"]
        if c["field"] == "sla.breached first_response" and c["before"] is None
    }
    # case 2 was answered at 09:35, within the hour; 1, 3 and 4 breach an hour after they came
    assert gained == {
        _case(1): "2027-01-04T10:00:00Z",
        _case(3): "2027-01-04T10:10:00Z",
        _case(4): "2027-01-04T10:15:00Z",
    }
    assert report["breaches"]["before"] == 0
    assert report["breaches"]["after"] == 3
    assert report["breaches"]["by_queue"]["billing"] == {"before": 0, "after": 2}
    assert report["first_response"]["before"] == {"met": 1, "breached": 0, "attainment": 1.0}
    assert report["first_response"]["after"] == {"met": 1, "breached": 3, "attainment": 0.25}
    due = {c["case_id"]: c for c in report["changed"] if c["field"] == "due.first_response"}
    # 8 business hours from 10:15 in Berlin (08:00-18:00): 08:15 the next morning
    assert due[_case(4)]["before"] == "2027-01-05T07:15:00Z"
    assert due[_case(4)]["after"] == "2027-01-04T10:15:00Z"


def test_the_human_summary_lists_totals_and_top_differences(
    tmp_path: Path, history: tuple[Path, Path]
) -> None:
    baseline = _rules(tmp_path / "baseline")
    candidate = _rules(
        tmp_path / "candidate",
        replace=("normal: {first_response: 8h,", "normal: {first_response: 1h,"),
    )
    output = _backtest(candidate, baseline, history, "--top", "1")
    assert "replayed 4 messages and 2 agent actions into 4 cases; 4 cases differ" in output
    assert "breaches: 0 → 3" in output
    assert "first-response attainment: 100.0% (1 of 1) → 25.0% (1 of 4)" in output
    assert "top differences (1 of 4 cases):" in output
    assert "sla.breached first_response: - → 2027-01-04T10:" in output


def test_invalid_lines_are_counted_and_left_out(tmp_path: Path, history: tuple[Path, Path]) -> None:
    messages, _actions = history
    messages.write_text(messages.read_text() + '{"channel": "email"}\nnot json\n')
    baseline = _rules(tmp_path / "baseline")
    report = json.loads(_backtest(baseline, baseline, history, "--json"))
    assert report["history"]["invalid"] == 2
    assert report["history"]["first_invalid"].startswith(f"{messages}:5:")
    assert report["cases"] == 4


def test_from_and_to_bound_the_replay(tmp_path: Path, history: tuple[Path, Path]) -> None:
    baseline = _rules(tmp_path / "baseline")
    report = json.loads(
        _backtest(baseline, baseline, history, "--json", "--from", "2027-01-04T09:06:00Z")
    )
    assert report["cases"] == 2  # messages 3 and 4
    assert report["history"] == {"messages": 2, "actions": 2, "invalid": 0, "first_invalid": None}
    assert report["skipped"]["actions_for_unknown_cases"] == 2  # case 2 opened before --from
    assert report["range"] == {"from": "2027-01-04T09:06:00Z", "to": "2027-01-04T16:00:00Z"}


def _job(history: tuple[Path, Path], tmp_path: Path, parallel: bool) -> dict[str, Any]:
    candidate = _rules(
        tmp_path / f"candidate-{parallel}",
        replace=("normal: {first_response: 8h,", "normal: {first_response: 1h,"),
    )
    rules_of = lambda folder: compile_sources(  # noqa: E731
        {p.name: p.read_text() for p in folder.glob("*.yaml")}
    )
    job = Backtest(
        baseline=rules_of(_rules(tmp_path / f"baseline-{parallel}")),
        candidate=rules_of(candidate),
        messages=history[0],
        actions=history[1],
        until=MONDAY + timedelta(days=2),
        parallel=parallel,
    )
    return run_backtest(job)


def test_two_processes_report_what_one_does(tmp_path: Path, history: tuple[Path, Path]) -> None:
    assert _job(history, tmp_path, True) == _job(history, tmp_path, False)


class _WrittenAndRead(dict[str, CaseState]):
    """Cases held as the worker holds them: each written as JSON and read back."""

    def __setitem__(self, case_id: str, state: CaseState) -> None:
        super().__setitem__(case_id, CaseState.model_validate_json(state.model_dump_json()))


@dataclass
class _JsonWorker(SimulatedWorker):
    def __post_init__(self) -> None:
        self.cases = _WrittenAndRead()


def test_clocks_held_parsed_decide_what_clocks_read_from_json_do(
    history: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    ruleset = compile_sources(
        {p.name: p.read_text() for p in EXAMPLES.glob("*.yaml") if p.name != "tests.yaml"}
    )
    items = in_order(from_files(*history).items)
    until = MONDAY + timedelta(days=3)
    kept = replay(items, ruleset, until)
    monkeypatch.setattr(backtest_module, "SimulatedWorker", _JsonWorker)
    read = replay(items, ruleset, until)
    assert kept.outcomes == read.outcomes
    assert any(o.clock_events for o in kept.outcomes.values())
    assert replay_both(items, ruleset, ruleset, until, parallel=False)[0].outcomes == kept.outcomes
