"""The chaos harness's judge: each invariant it checks is caught when a log breaks it."""

from __future__ import annotations

import json
from typing import Any

from chaos.observer import LogFacts, verdict


def _event(event_id: str, kind: str, case_id: str = "C-1", **payload: Any) -> bytes:
    return json.dumps(
        {
            "event_id": event_id,
            "case_id": case_id,
            "type": kind,
            "at": payload.pop("at", "2027-01-04T09:00:00Z"),
            "reason": "test",
            "payload": payload,
        }
    ).encode()


def _appended(event_id: str, external_id: str, case_id: str = "C-1") -> bytes:
    message = {"channel": "email", "external_id": external_id, "direction": "inbound"}
    return _event(event_id, "message.appended", case_id, message=message)


def _facts(*records: bytes) -> LogFacts:
    facts = LogFacts()
    for record in records:
        facts.add(record)
    return facts


def test_a_clean_log_passes_and_redeliveries_are_harmless() -> None:
    opened = _event("e-open", "case.opened")
    appended = _appended("e-app", "m1")
    facts = _facts(opened, appended, opened, appended)  # the same events written twice
    result = verdict(facts, {("email", "m1")})
    assert result.ok
    assert facts.records == 4


def test_a_lost_message_is_counted() -> None:
    facts = _facts(_event("e-open", "case.opened"), _appended("e-app", "m1"))
    result = verdict(facts, {("email", "m1"), ("email", "m2")})
    assert result.lost == 1
    assert not result.ok


def test_a_message_appended_twice_under_two_ids_is_a_duplicate() -> None:
    facts = _facts(_event("e-open", "case.opened"), _appended("e-a", "m1"), _appended("e-b", "m1"))
    assert verdict(facts, {("email", "m1")}).duplicated == 1


def test_a_case_opened_twice_or_never_is_caught() -> None:
    twice = _facts(_event("e-1", "case.opened"), _event("e-2", "case.opened"))
    assert verdict(twice, set()).cases_without_one_opening == 1
    never = _facts(_event("e-3", "case.routed", case_id="C-2"))
    assert verdict(never, set()).cases_without_one_opening == 1


def test_one_event_id_with_two_contents_is_a_conflict() -> None:
    facts = _facts(
        _event("e-open", "case.opened"),
        _event("e-w", "sla.warning", discriminator="first_response#1:warning:x", queue="a"),
        _event("e-w", "sla.warning", discriminator="first_response#1:warning:x", queue="b"),
    )
    result = verdict(facts, set())
    assert result.event_id_conflicts == 1
    assert "sla.warning e-w" in result.conflict_examples[0]


def test_a_clock_run_breached_twice_is_a_duplicated_sla_event() -> None:
    facts = _facts(
        _event("e-open", "case.opened"),
        _event("b-1", "sla.breached", discriminator="first_response#1:breach:a"),
        _event("b-2", "sla.breached", discriminator="first_response#1:breach:b"),
        _event("b-3", "sla.breached", discriminator="first_response#2:breach:a"),
    )
    assert verdict(facts, set()).sla_events_duplicated == 1


def test_a_breach_after_the_clock_was_met_is_caught() -> None:
    facts = _facts(
        _event("e-open", "case.opened"),
        _event("m-1", "sla.met", discriminator="first_response#1:met:x", at="2027-01-04T09:10:00Z"),
        _event(
            "b-1",
            "sla.breached",
            discriminator="first_response#1:breach:y",
            at="2027-01-04T09:30:00Z",
        ),
    )
    assert verdict(facts, set()).sla_fired_after_met == 1
    met_later = _facts(
        _event("e-open", "case.opened"),
        _event(
            "b-1",
            "sla.breached",
            discriminator="first_response#1:breach:y",
            at="2027-01-04T09:30:00Z",
        ),
        _event("m-1", "sla.met", discriminator="first_response#1:met:x", at="2027-01-04T09:40:00Z"),
    )
    assert verdict(met_later, set()).sla_fired_after_met == 0
