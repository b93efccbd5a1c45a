"""Channel switches (stage C's case state) and the customer's history (stage B) for rules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from rules import CompiledRuleSet, CustomerHistory, compile_sources
from schemas import CaseStatus, InboundMessage
from schemas.ids import successor_case_id
from streams.case_entry import entry_for
from streams.case_state import CaseState
from streams.casework import apply_message
from streams.records import HistoryRecord, ResolvedMessage, ThreadedMessage
from streams.threader import CustomerState, ThreadingPolicy, thread

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
POLICY = ThreadingPolicy(
    thread_window=timedelta(days=3),
    reopen_window=timedelta(days=2),
    history_window=timedelta(days=30),
)

RULES = """
version: 1
queues: {general: {}, tier2: {}, returning: {}}
routes:
  queue: general
  priority: normal
  routes:
    - name: third-contact-across-channels
      when:
        case.contacts: {at_least: 3}
        case.channel_switches: {at_least: 1}
      queue: tier2
      priority: +1
    - name: returning-customer
      when: {history.recent_cases: {at_least: 1}}
      queue: returning
"""


@pytest.fixture(scope="module")
def ruleset() -> CompiledRuleSet:
    return compile_sources({"facts.yaml": RULES})


def resolved(
    external_id: str, at: datetime = T0, channel: str = "email", **extra: Any
) -> ResolvedMessage:
    message = InboundMessage.model_validate(
        {
            "channel": channel,
            "external_id": external_id,
            "sender": "ana@example.com",
            "text": "my parcel never arrived",
            "sent_at": at.isoformat(),
            **extra,
        }
    )
    return ResolvedMessage(
        customer_id="cus_ana", message=message, ingested_at=at, identity_evidence="test"
    )


def threaded(result: object) -> ThreadedMessage:
    assert isinstance(result, ThreadedMessage), result
    return result


def run_b(
    messages: list[ResolvedMessage], state: CustomerState | None = None
) -> tuple[CustomerState, list[ThreadedMessage]]:
    """Thread messages in order through stage B; the final state and every threaded record."""
    out = []
    for message in messages:
        state, result = thread(state, message, POLICY)
        out.append(threaded(result))
    assert state is not None
    return state, out


def run_c(
    records: list[ThreadedMessage], ruleset: CompiledRuleSet, state: CaseState | None = None
) -> CaseState:
    """Apply threaded records of one case in order through stage C; the final case state."""
    for record in records:
        state = apply_message(state, record, ruleset).state
    assert state is not None
    return state


# --- channel switches ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("channels", "switches"),
    [
        (["email"], 0),
        (["email", "twitter", "sms"], 2),
        (["email", "email", "sms", "sms"], 1),
        (["email", "sms", "email", "sms"], 3),
    ],
)
def test_channel_switches_count_changes_between_consecutive_customer_messages(
    channels: list[str], switches: int, ruleset: CompiledRuleSet
) -> None:
    _, records = run_b(
        [
            resolved(f"m{i}", T0 + timedelta(minutes=i), channel=channel)
            for i, channel in enumerate(channels)
        ]
    )
    assert len({r.case_id for r in records}) == 1
    state = run_c(records, ruleset)
    assert state.channel_switches == switches
    assert state.facts(T0).channel_switches == switches


def test_duplicates_and_auto_replies_switch_nothing(ruleset: CompiledRuleSet) -> None:
    auto = {"metadata": {"auto_reply": True}, "in_reply_to": "<m1@x>"}
    _, records = run_b(
        [
            resolved("m1", thread_ref="<m1@x>"),
            resolved("t1", T0 + timedelta(minutes=1), "twitter"),
            resolved("ooo", T0 + timedelta(minutes=2), "email", **auto),
            resolved("t2", T0 + timedelta(minutes=3), "twitter"),
        ]
    )
    assert len({r.case_id for r in records}) == 1
    state = run_c(records[:2], ruleset)
    assert apply_message(state, records[1], ruleset).state.channel_switches == 1  # duplicate
    after_note = apply_message(state, records[2], ruleset).state
    assert after_note.messages[-1].direction == "note"
    assert after_note.channel_switches == 1
    # twitter → (email auto-reply) → twitter: the customer never switched
    assert apply_message(after_note, records[3], ruleset).state.channel_switches == 1


def test_case_state_from_before_switches_were_counted_still_loads_and_counts_on(
    ruleset: CompiledRuleSet,
) -> None:
    _, records = run_b(
        [resolved("m1"), resolved("m2", T0 + timedelta(minutes=1)), resolved("s1", T0, "sms")]
    )
    state = run_c(records[:2], ruleset)
    old = state.model_dump(mode="json")
    del old["channel_switches"], old["last_customer_channel"]
    loaded = CaseState.model_validate(old)
    assert loaded.channel_switches == 0 and loaded.last_customer_channel is None
    # the latest inbound message kept in the state stands in for the last channel
    assert apply_message(loaded, records[2], ruleset).state.channel_switches == 1


def test_third_contact_after_a_channel_switch_goes_to_tier2(ruleset: CompiledRuleSet) -> None:
    _, records = run_b(
        [
            resolved("m1"),
            resolved("m2", T0 + timedelta(hours=1)),
            resolved("s1", T0 + timedelta(hours=2), "sms"),
        ]
    )
    queues = []
    state = None
    for record in records:
        update = apply_message(state, record, ruleset)
        state = update.state
        queues.append(state.queue)
    assert queues == ["general", "general", "tier2"]
    assert state is not None and state.matched == ["third-contact-across-channels"]
    assert state.priority is not None and state.priority.value == "high"


def test_three_contacts_on_one_channel_stay_where_they_are(ruleset: CompiledRuleSet) -> None:
    _, records = run_b([resolved(f"m{i}", T0 + timedelta(hours=i)) for i in range(3)])
    assert run_c(records, ruleset).queue == "general"


# --- the customer's history ---------------------------------------------------------------


def test_history_counts_the_customers_earlier_cases_and_the_recent_ones() -> None:
    later = T0 + timedelta(days=10)  # past the 3-day threading window: a new case
    much_later = T0 + timedelta(days=35)
    _, records = run_b(
        [
            resolved("a1"),
            resolved("a2", T0 + timedelta(hours=1)),
            resolved("b1", later),
            resolved("b2", later + timedelta(hours=1)),
            resolved("c1", much_later),
        ]
    )
    cases = [r.case_id for r in records]
    assert cases[0] == cases[1] != cases[2] == cases[3] != cases[4]
    facts = [(r.history.cases, r.history.recent_cases) for r in records if r.history]
    assert facts == [
        (0, 0),  # first case: no history
        (0, 0),  # its follow-up: its own case is not history
        (1, 1),  # second case, 10 days after the first
        (1, 1),
        (2, 1),  # 35 days on: the first case is older than the 30-day window, the second not
    ]
    assert all(r.history and r.history.window == timedelta(days=30) for r in records)


def test_history_is_a_pure_function_of_state_and_input() -> None:
    messages = [resolved("a1"), resolved("b1", T0 + timedelta(days=5), "sms")]
    _, once = run_b(messages)
    _, again = run_b(messages)
    assert [r.model_dump_json() for r in once] == [r.model_dump_json() for r in again]
    state, _ = run_b(messages[:1])
    reloaded = CustomerState.model_validate_json(state.model_dump_json())
    _, [from_reloaded] = run_b(messages[1:], reloaded)
    assert from_reloaded == once[1]


def test_customer_state_without_opened_cases_still_loads_and_counts_its_cases() -> None:
    state, _ = run_b([resolved("a1")])
    old = state.model_dump(mode="json")
    del old["opened"]
    loaded = CustomerState.model_validate(old)
    assert loaded.opened == {} and len(loaded.case_ids) == 1
    _, [second] = run_b([resolved("b1", T0 + timedelta(days=5))], loaded)
    assert second.history == HistoryRecord(cases=1, recent_cases=0, window=timedelta(days=30))


def test_threaded_record_without_history_still_loads_and_counts_as_none(
    ruleset: CompiledRuleSet,
) -> None:
    _, [record] = run_b([resolved("a1")])
    old = record.model_dump(mode="json")
    del old["history"]
    loaded = ThreadedMessage.model_validate(old)
    assert loaded.history is None and loaded.history_facts() == CustomerHistory()
    assert apply_message(None, loaded, ruleset).state.queue == "general"


def test_the_customers_second_case_routes_by_history(ruleset: CompiledRuleSet) -> None:
    _, records = run_b([resolved("a1"), resolved("b1", T0 + timedelta(days=5))])
    first, second = (apply_message(None, r, ruleset).state for r in records)
    assert (first.queue, second.queue) == ("general", "returning")
    assert second.matched == ["returning-customer"]


def test_forum_topics_the_customer_started_count_posts_in_others_topics_do_not() -> None:
    topic = {"thread_ref": "42", "sender": "ana"}
    state, records = run_b(
        [
            resolved("p1", T0, "community", **topic, metadata={"kind": "topic"}),
            resolved("p2", T0 + timedelta(hours=1), "community", **topic),
            resolved("p3", T0 + timedelta(hours=2), "community", thread_ref="99", sender="ana"),
            resolved("e1", T0 + timedelta(days=5)),
        ]
    )
    assert [r.history.cases for r in records if r.history] == [0, 0, 1, 1]
    assert len(state.opened) == 2  # her topic and her email case; topic 99 is someone else's


def test_a_message_moved_to_a_successor_counts_the_case_it_left(ruleset: CompiledRuleSet) -> None:
    state, [first] = run_b([resolved("a1")])
    case = apply_message(None, first, ruleset).state
    case.status = CaseStatus.RESOLVED
    case.resolved_at = T0 + timedelta(hours=1)
    late = T0 + timedelta(days=2, hours=2)  # inside the threading window, past the reopen window
    _, [record] = run_b([resolved("a2", late)], state)
    assert record.case_id == case.case_id and record.history
    assert (record.history.cases, record.history.recent_cases) == (0, 0)
    moved = threaded(entry_for(case, record, POLICY))
    assert moved.case_id == successor_case_id("cus_ana", case.case_id)
    assert moved.history == HistoryRecord(cases=1, recent_cases=1, window=timedelta(days=30))
    assert apply_message(None, moved, ruleset).state.queue == "returning"


def test_someone_elses_case_is_not_the_customers_history(ruleset: CompiledRuleSet) -> None:
    _, [first] = run_b([resolved("a1")])
    case = apply_message(None, first, ruleset).state
    case.status = CaseStatus.RESOLVED
    case.resolved_at = T0
    bob = first.model_copy(
        update={
            "customer_id": "cus_bob",
            "ingested_at": T0 + timedelta(days=9),
            "successor_case_id": successor_case_id("cus_bob", case.case_id),
            "history": HistoryRecord(cases=0, recent_cases=0, window=timedelta(days=30)),
        }
    )
    moved = threaded(entry_for(case, bob, POLICY))
    assert moved.history == bob.history


def test_a_record_from_a_newer_release_loads_without_its_new_fields(
    ruleset: CompiledRuleSet,
) -> None:
    """Rolling upgrades: a worker reads records a newer worker wrote with fields it lacks."""
    _, [record] = run_b([resolved("a1")])
    newer = record.model_dump(mode="json")
    newer["added_in_a_later_release"] = {"anything": 1}
    loaded = ThreadedMessage.model_validate(newer)
    assert loaded == record
    assert apply_message(None, loaded, ruleset).state.queue == "general"


def test_a_mails_authentication_results_reach_its_message_appended_event(
    ruleset: CompiledRuleSet,
) -> None:
    auth = {"spf": "fail", "dkim": "none", "dmarc": "fail", "from_domain": "victim.test"}
    noisy = {**auth, "dkim_domains": ["x"] * 1_000, "spf": "fail" * 1_000}
    _, records = run_b(
        [resolved("m1", metadata={"auth": auth}), resolved("m2", metadata={"auth": noisy})]
    )
    state = None
    payloads = []
    for record in records:
        applied = apply_message(state, record, ruleset)
        state = applied.state
        payloads += [e.payload for e in applied.events if e.type == "message.appended"]
    assert [p["auth"] for p in payloads] == [
        auth,
        {**auth, "spf": ("fail" * 1_000)[:255]},  # only the words, each bounded
    ]
