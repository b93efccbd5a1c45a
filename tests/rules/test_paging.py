"""On-call paging in the rules: the `pagers:` section, paging steps, repeats until acknowledged.

The clock engine drives the pages (event time, the same `due` as every other step): a step
with `until: acknowledged` pages every `every` until an acknowledgement or a claim stops it,
walks down a chain after a level's unacknowledged pages, and stops at `max_pages`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

import rules
from rules import clocks as sla
from schemas import Priority

T0 = datetime(2027, 1, 4, 9, 0, tzinfo=UTC)

RULES = """
version: 1
sla:
  always:
    targets: {normal: {first_response: 10m}}
pagers:
  db-primary: {pagerduty: {severity: critical, component: database}}
  db-backup: {opsgenie: {priority: P1, responders: [dba]}}
  duty-phone: {sms: {to: ["+15550100"]}}
  oncall-slack: {slack: {channel: C0123}}
  duty-mail: {email: {to: [duty@example.com]}}
  database:
    chain:
      - {page: [db-primary, oncall-slack], pages: 2}
      - {page: [db-backup], pages: 1}
      - {page: [duty-phone, duty-mail]}
escalations:
  paging:
    - {on: breach, clock: first_response, page: database, until: acknowledged, every: 5m,
       max_pages: 6}
queues: {general: {}}
routes: {queue: general, priority: normal, sla: always, escalation: paging}
"""


def policy(text: str = RULES) -> sla.ClockPolicy:
    ruleset = rules.compile_sources({"paging.yaml": text})
    return sla.ClockPolicy.from_ruleset(ruleset, "always", "paging")


def pages(events: list[sla.ClockEvent]) -> list[tuple[datetime, int, list[str]]]:
    """(for-time, page number, target names) of each page fired."""
    found = []
    for event in events:
        page = event.escalation.page if event.escalation is not None else None
        if page is not None:
            found.append((event.at, page.number, [target.name for target in page.targets]))
    return found


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def test_a_page_repeats_down_the_chain_until_the_bound() -> None:
    paging = policy()
    case, _ = sla.start(paging, Priority.NORMAL, T0)
    case, events = sla.due(case, paging, at(120))
    assert pages(events) == [
        (at(10), 1, ["db-primary", "oncall-slack"]),
        (at(15), 2, ["db-primary", "oncall-slack"]),
        (at(20), 3, ["db-backup"]),
        (at(25), 4, ["duty-phone", "duty-mail"]),
        (at(30), 5, ["duty-phone", "duty-mail"]),
        (at(35), 6, ["duty-phone", "duty-mail"]),
    ]
    first = next(e for e in events if e.escalation is not None)
    assert first.escalation is not None and first.escalation.page is not None
    payload = first.escalation.to_dict()["page"]
    assert payload["run"] == "breach:first_response#1/step0"
    assert payload["until"] == "acknowledged"
    assert payload["targets"][0] == {
        "name": "db-primary",
        "via": "pagerduty",
        "settings": {"component": "database", "severity": "critical"},
    }
    assert "page 1 of database, every 5m until acknowledged" in first.reason
    assert case.timers == ()


def test_an_acknowledgement_stops_the_repeats() -> None:
    paging = policy()
    case, _ = sla.start(paging, Priority.NORMAL, T0)
    case, before = sla.due(case, paging, at(16))
    case, during = sla.acknowledged(case, paging, at(17))
    case, after = sla.due(case, paging, at(120))
    assert [number for _at, number, _targets in pages(before)] == [1, 2]
    assert pages(during + after) == []


def test_an_acknowledgement_before_the_first_page_stops_nothing() -> None:
    """Nothing was paged yet: the breach still pages (an acknowledgement is of a page)."""
    paging = policy()
    case, _ = sla.start(paging, Priority.NORMAL, T0)
    case, _ = sla.acknowledged(case, paging, at(5))
    case, events = sla.due(case, paging, at(11))
    assert [number for _at, number, _targets in pages(events)] == [1]


def test_a_claim_stops_the_repeats_too() -> None:
    paging = policy()
    case, _ = sla.start(paging, Priority.NORMAL, T0)
    case, before = sla.due(case, paging, at(10))
    case, _ = sla.claimed(case, paging, at(12))
    case, after = sla.due(case, paging, at(120))
    assert len(pages(before)) == 1 and pages(after) == []


def test_the_state_round_trips_and_old_state_reads_back() -> None:
    paging = policy()
    case, _ = sla.start(paging, Priority.NORMAL, T0)
    case, _ = sla.due(case, paging, at(12))
    again = sla.CaseClocks.from_dict(case.to_dict())
    assert again == case
    old = case.to_dict()
    for timer in old["timers"]:  # a state written before paging existed
        for key in ("page", "page_levels", "until", "every_seconds", "max_pages"):
            timer["step"].pop(key, None)
    read = sla.CaseClocks.from_dict(old)
    assert read.timers[0].step.page is None and read.timers[0].step.until is None


def test_a_step_without_until_pages_once_per_firing() -> None:
    text = RULES.replace(
        "page: database, until: acknowledged, every: 5m,\n       max_pages: 6",
        "page: duty-phone",
    )
    paging = policy(text)
    case, _ = sla.start(paging, Priority.NORMAL, T0)
    case, events = sla.due(case, paging, at(120))
    assert pages(events) == [(at(10), 1, ["duty-phone"])]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            ("page: database", "page: databse"),
            "paging.yaml:19:49: undefined pager 'databse' (did you mean 'database'?)",
        ),
        (
            ("[db-backup], pages: 1", "[database], pages: 1"),
            "paging.yaml:15:17: a chain level pages targets, not chain 'database'",
        ),
        (
            ("[db-backup], pages: 1", "[db-backup]"),
            "paging.yaml:15:9: only the last level of a chain may omit 'pages'",
        ),
        (
            ("until: acknowledged, every: 5m,", "until: acknowledged,"),
            "paging.yaml:19:59: 'until: acknowledged' needs 'every'",
        ),
        (
            ("{slack: {channel: C0123}}", "{slack: {channel: C0123}, sms: {to: ['+15550100']}}"),
            "paging.yaml:10:17: 'oncall-slack': a pager is exactly one of pagerduty, opsgenie, "
            "sms, slack, email or chain (this one has sms, slack)",
        ),
        (
            ('{sms: {to: ["+15550100"]}}', '{sms: {to: ["555-0100"]}}'),
            "paging.yaml:9:",
        ),
    ],
)
def test_rules_check_points_at_each_paging_mistake(change: tuple[str, str], expected: str) -> None:
    text = RULES.replace(*change)
    assert text != RULES
    with pytest.raises(rules.RuleSetError) as caught:
        rules.compile_sources({"paging.yaml": text})
    shown = [str(problem) for problem in caught.value.problems]
    assert any(line.startswith(expected) for line in shown), shown
