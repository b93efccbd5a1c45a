"""Stage C never changes the state it was given: it works on a copy (`CaseState.changeable`).

The copy is shallow where stage C only replaces values and one level deep where it changes
lists in place, so these tests drive every kind of change and compare the original with a
snapshot taken before.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from rules import compile_sources
from schemas import AgentAction, InboundMessage
from streams.actions import apply_action
from streams.case_state import CaseState
from streams.casework import apply_message, fire_clocks
from streams.records import ThreadedMessage

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "rules"
RULESET = compile_sources(
    {p.name: p.read_text() for p in EXAMPLES.glob("*.yaml") if p.name != "tests.yaml"}
)
T0 = datetime(2027, 1, 4, 9, 0, tzinfo=UTC)


def _threaded(number: int, at: datetime, channel: str = "email") -> ThreadedMessage:
    message = InboundMessage.model_validate(
        {
            "channel": channel,
            "external_id": f"m{number}",
            "sender": "ana@example.com",
            "text": "I was charged twice, refund please",
            "sent_at": at.isoformat(),
        }
    )
    return ThreadedMessage(
        case_id="C-ABCDEFGHIJ",
        customer_id="cus_1",
        opens_case=number == 1,
        evidence="test",
        message=message,
        ingested_at=at,
    )


def _opened() -> CaseState:
    return apply_message(None, _threaded(1, T0), RULESET).state


def test_a_changeable_copy_shares_no_list_with_the_original() -> None:
    state = _opened()
    copy = state.changeable()
    assert copy == state
    for name, value in state:
        if isinstance(value, list | dict):
            assert getattr(copy, name) is not value or name == "clocks", name


def test_open_pages_are_copied_since_an_acknowledgement_marks_them() -> None:
    from streams.case_state import OpenPage

    state = _opened().model_copy(
        update={"open_pages": [OpenPage(key="k", pager="pagerduty", first_paged_at=T0)]}
    )
    copy = state.changeable()
    copy.open_pages[0].acknowledged_by = "ana"
    assert state.open_pages[0].acknowledged_by is None


def test_a_follow_up_on_another_channel_leaves_the_given_state_alone() -> None:
    state = _opened()
    before = state.model_dump()
    update = apply_message(state, _threaded(2, T0 + timedelta(minutes=5), "sms"), RULESET)
    assert update.state.channels == ["email", "sms"]
    assert len(update.state.message_keys) == 2
    assert state.model_dump() == before


def test_actions_and_firings_leave_the_given_state_alone() -> None:
    state = _opened()
    before = state.model_dump()
    reply = AgentAction(
        action_id="a1",
        case_id=state.case_id,
        agent_id="agent-1",
        type="reply",
        text="On it",
        at=T0 + timedelta(minutes=3),
    )
    update = apply_action(state, reply, RULESET)
    assert update is not None and update.changed
    assert state.model_dump() == before
    assert state.next_deadline is not None
    fired = fire_clocks(state, RULESET, state.next_deadline)
    assert fired.changed
    assert state.model_dump() == before


def test_threading_leaves_the_given_customer_state_alone() -> None:
    from streams.records import ResolvedMessage
    from streams.threader import thread

    def resolved(number: int, minutes: int) -> ResolvedMessage:
        return ResolvedMessage(
            customer_id="cus_1",
            message=InboundMessage.model_validate(
                {
                    "channel": "email",
                    "external_id": f"t{number}",
                    "sender": "ana@example.com",
                    "text": "hello",
                    "thread_ref": f"ref-{number}",
                    "sent_at": T0.isoformat(),
                }
            ),
            ingested_at=T0 + timedelta(minutes=minutes),
            identity_evidence="test",
        )

    state, _ = thread(None, resolved(1, 0))
    before = state.model_dump()
    later, threaded = thread(state, resolved(2, 10 * 24 * 60))  # past the thread window
    assert not isinstance(threaded, str)
    assert len(later.case_ids) == 2 and len(later.seen) == 1  # the first key was forgotten
    assert state.model_dump() == before


def test_clock_times_are_written_in_utc_whatever_their_zone() -> None:
    from zoneinfo import ZoneInfo

    from rules import clocks
    from schemas import ClockState

    berlin = datetime(2027, 1, 4, 10, 0, 0, 250_000, tzinfo=ZoneInfo("Europe/Berlin"))
    clock = clocks.SlaClock(
        name="first_response",
        state=ClockState.RUNNING,
        started_at=berlin,
        target="8h",
        due_at=berlin.astimezone(UTC),
        warn_at=berlin.astimezone(UTC),
    )
    data = clock.to_dict()
    assert data["started_at"] == "2027-01-04T09:00:00.250000Z"
    assert data["due_at"] == "2027-01-04T09:00:00.250000Z"
    assert clocks.SlaClock.from_dict(data).started_at == berlin
