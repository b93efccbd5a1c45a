"""The SLA clocks are one table (`schemas.SLA_CLOCKS`): all that lists or runs clocks follows it.

A row says what starts, pauses, meets and re-targets a clock. These tests change rows and
check that the engine, `explain`'s due times, the rule schema, the docs and the case-store
gauges follow, and that no product module spells a clock name of its own.
"""

from __future__ import annotations

import ast
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import rules
from queues.store_metrics import SLA_CLOCKS as STORE_CLOCKS
from rules import CaseFacts
from rules import clocks as sla
from rules._sla_policy import due_times
from schemas import (
    CLOCK_NAMES,
    SLA_CLOCKS,
    CaseMoment,
    ClockDefinition,
    ClockName,
    ClockState,
    InboundMessage,
    Priority,
    clock_definition,
)

REPO = Path(__file__).resolve().parents[2]
PRODUCT = (
    "schemas",
    "kafkaio",
    "metricsio",
    "rules",
    "connectors",
    "streams",
    "queues",
    "escalator",
)
TABLE_MODULE = REPO / "schemas" / "_clocks.py"

RULES = """
version: 1
calendars:
  office: {timezone: Europe/Berlin, hours: {mon-fri: ["09:00-17:00"]}, holidays: ["2027-01-06"]}
sla:
  standard:
    calendar: office
    targets:
      urgent: {first_response: 30m, next_response: 1h, resolution: 8h}
      normal: {first_response: 8h, next_response: 4h, resolution: 2d}
    warn_at: 75%
    pause_when: [waiting_on_customer]
queues: {general: {}}
routes: {queue: general, priority: normal, sla: standard}
"""

RULESET = rules.compile_sources({"sla.yaml": RULES})
POLICY = sla.ClockPolicy.from_ruleset(RULESET, "standard")
T0 = datetime(2027, 1, 4, 8, 30, tzinfo=UTC)  # Monday 09:30 in Berlin


def with_row(name: ClockName, **changes: object) -> tuple[ClockDefinition, ...]:
    """The clock table with the row of `name` changed."""
    return tuple(replace(row, **changes) if row.name == name else row for row in SLA_CLOCKS)


def started(events: list[sla.ClockEvent]) -> list[str | None]:
    return [event.clock for event in events if event.kind is sla.ClockEventKind.STARTED]


# -- one table, in one place ---------------------------------------------------------------


def _clock_name_literals(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    return [
        f"{path.relative_to(REPO)}:{node.lineno}: {node.value!r}"
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and node.value in CLOCK_NAMES
    ]


def test_no_product_module_spells_a_clock_name_of_its_own() -> None:
    found = [
        hit
        for package in PRODUCT
        for path in sorted((REPO / package).rglob("*.py"))
        if path != TABLE_MODULE
        for hit in _clock_name_literals(path)
    ]
    assert found == []


def test_every_clock_name_has_one_row_in_table_order() -> None:
    assert [row.name for row in SLA_CLOCKS] == list(ClockName)
    assert tuple(name.value for name in ClockName) == CLOCK_NAMES
    assert clock_definition("resolution").met_on == {CaseMoment.CASE_RESOLVED}
    with pytest.raises(KeyError):
        clock_definition("first_reponse")


def test_rule_schema_offers_every_clock_as_a_target_and_a_step_clock() -> None:
    schema = rules.rule_file_json_schema()["$defs"]
    assert tuple(schema["SlaTargets"]["properties"]) == CLOCK_NAMES
    clock = schema["EscalationStep"]["properties"]["clock"]["anyOf"][0]
    assert tuple(clock["enum"]) == CLOCK_NAMES


def test_a_misspelt_clock_is_still_refused_by_name() -> None:
    broken = RULES.replace("urgent: {first_response: 30m", "urgent: {first_reponse: 30m")
    with pytest.raises(rules.RuleSetError) as raised:
        rules.compile_sources({"sla.yaml": broken})
    assert "first_reponse" in str(raised.value)
    assert "first_response" in str(raised.value)


def test_store_gauges_count_every_clock() -> None:
    assert STORE_CLOCKS == CLOCK_NAMES


def test_docs_table_of_clocks_is_the_clock_table() -> None:
    text = (REPO / "docs" / "sla.md").read_text()
    rows = re.findall(r"^\| `(\w+)` \| (.+?) \| (.+?) \|$", text, flags=re.MULTILINE)
    assert rows == [(row.name.value, row.starts, row.met) for row in SLA_CLOCKS]


# -- the engine follows the rows -----------------------------------------------------------


def test_a_row_that_does_not_pause_keeps_counting_while_the_case_waits() -> None:
    policy = replace(POLICY, clocks=with_row(ClockName.RESOLUTION, pauses=False))
    case, _ = sla.start(policy, Priority.NORMAL, T0)
    case, events = sla.status_changed(case, policy, "waiting_on_customer", T0 + timedelta(hours=1))
    assert [(e.kind.value, e.clock) for e in events] == [("sla.paused", "first_response")]
    resolution = case.clock("resolution")
    assert resolution is not None and resolution.state is ClockState.RUNNING
    # The table as shipped pauses both.
    case, _ = sla.start(POLICY, Priority.NORMAL, T0)
    case, events = sla.status_changed(case, POLICY, "waiting_on_customer", T0 + timedelta(hours=1))
    assert [e.clock for e in events] == ["first_response", "resolution"]


def test_a_row_started_on_reopening_starts_a_fresh_run_then() -> None:
    starts = frozenset({CaseMoment.CASE_OPENED, CaseMoment.CASE_REOPENED})
    policy = replace(POLICY, clocks=with_row(ClockName.FIRST_RESPONSE, starts_on=starts))
    case, _ = sla.start(policy, Priority.NORMAL, T0)
    case, _ = sla.resolved(case, policy, T0 + timedelta(hours=1))
    case, events = sla.reopened(case, policy, T0 + timedelta(hours=2))
    assert started(events) == ["first_response", "next_response", "resolution"]
    first = case.clock("first_response")
    assert first is not None and first.run == 2
    case, _ = sla.start(POLICY, Priority.NORMAL, T0)  # the table as shipped
    case, _ = sla.resolved(case, POLICY, T0 + timedelta(hours=1))
    _, events = sla.reopened(case, POLICY, T0 + timedelta(hours=2))
    assert started(events) == ["next_response", "resolution"]


def test_the_rows_meeting_a_clock_decide_what_an_agent_reply_and_resolving_say() -> None:
    met_by_resolving = frozenset({CaseMoment.CASE_RESOLVED})
    policy = replace(POLICY, clocks=with_row(ClockName.FIRST_RESPONSE, met_on=met_by_resolving))
    case, _ = sla.start(policy, Priority.NORMAL, T0)
    case, events = sla.agent_reply(case, policy, T0 + timedelta(minutes=5))
    assert events == []  # an agent reply no longer meets it
    case, events = sla.resolved(case, policy, T0 + timedelta(minutes=10))
    assert [(e.clock, e.reason.split(":")[0]) for e in events] == [
        ("first_response", "met in time (the case was resolved)"),
        ("resolution", "met in time (the case was resolved)"),
    ]


def test_a_row_that_does_not_retarget_keeps_its_target_when_priority_rises() -> None:
    policy = replace(POLICY, clocks=with_row(ClockName.RESOLUTION, retargets=False))
    case, _ = sla.start(policy, Priority.NORMAL, T0)
    case, _ = sla.priority_changed(case, policy, Priority.URGENT, T0 + timedelta(minutes=1))
    first, resolution = case.clock("first_response"), case.clock("resolution")
    assert first is not None and first.target == "30m"
    assert resolution is not None and resolution.target == "2d"


def test_explain_due_times_follow_the_rows() -> None:
    sla_policy = RULESET.sla_policies["standard"]
    facts = CaseFacts(age=timedelta(hours=1), agent_replies=1)
    at = T0 + timedelta(hours=1)
    assert list(due_times(sla_policy, Priority.NORMAL, facts, at)) == [
        "next_response",
        "resolution",
    ]
    table = with_row(ClockName.RESOLUTION, met_on=frozenset({CaseMoment.AGENT_REPLIED}))
    assert list(due_times(sla_policy, Priority.NORMAL, facts, at, table)) == ["next_response"]
    paused = CaseFacts(status="waiting_on_customer")
    table = with_row(ClockName.RESOLUTION, pauses=False)
    assert list(due_times(sla_policy, Priority.NORMAL, paused, at)) == []
    assert list(due_times(sla_policy, Priority.NORMAL, paused, at, table)) == ["resolution"]


# -- explain and the engine compute due times one way ---------------------------------------


@pytest.mark.parametrize("priority", [Priority.URGENT, Priority.NORMAL])
@pytest.mark.parametrize("replied", [False, True])
@pytest.mark.parametrize(
    "age", [timedelta(0), timedelta(minutes=47, seconds=13), timedelta(days=3, hours=7)]
)
def test_explain_due_times_are_the_engines(
    priority: Priority, replied: bool, age: timedelta
) -> None:
    at = datetime(2027, 1, 7, 15, 59, 30, 250_000, tzinfo=UTC)  # Thursday, near closing
    opened = at - age
    case, _ = sla.start(POLICY, priority, opened)
    if replied:
        case, _ = sla.agent_reply(case, POLICY, opened)
        case, _ = sla.customer_message(case, POLICY, at)
    running = {c.name: c.due_at for c in case.clocks if c.state is not ClockState.MET}
    facts = CaseFacts(age=age, agent_replies=1 if replied else 0)
    assert due_times(RULESET.sla_policies["standard"], priority, facts, at) == running


def test_a_decision_carries_the_due_times() -> None:
    at = T0 + timedelta(days=2, minutes=3)
    message = InboundMessage(
        channel="email", external_id="m-1", sender="a@example.com", text="hello", sent_at=at
    )
    facts = CaseFacts(age=timedelta(days=2), agent_replies=1)
    decision = RULESET.evaluate(message, facts, at)
    expected = due_times(RULESET.sla_policies["standard"], Priority.NORMAL, facts, at)
    assert decision.sla_due == expected
    assert list(expected) == ["next_response", "resolution"]
