"""Threading across channels: case references, the windows, auto-replies, forum topics,
reopening and successor cases (stage B decides, stage C checks the case can take it)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from rules import default_ruleset
from schemas import CaseStatus, InboundMessage
from schemas.ids import case_id_for, case_references, successor_case_id, thread_case_id
from streams.case_entry import entry_for
from streams.casework import apply_message
from streams.records import ResolvedMessage, ThreadedMessage
from streams.threader import NotThreaded, ThreadingPolicy, thread

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
POLICY = ThreadingPolicy(thread_window=timedelta(days=3), reopen_window=timedelta(days=2))


def resolved(
    external_id: str, at: datetime = T0, customer: str = "cus_ana", **extra: Any
) -> ResolvedMessage:
    fields: dict[str, Any] = {
        "channel": "email",
        "external_id": external_id,
        "sender": "ana@example.com",
        "text": "hello",
        "sent_at": at.isoformat(),
        **extra,
    }
    return ResolvedMessage(
        customer_id=customer,
        message=InboundMessage.model_validate(fields),
        ingested_at=at,
        identity_evidence="test",
    )


def threaded(result: object) -> ThreadedMessage:
    assert isinstance(result, ThreadedMessage), result
    return result


def test_references_are_found_in_the_case_id_format() -> None:
    case = case_id_for("cus_ana", "email:m1")
    assert case_references(f"Re: help [#{case}]") == [case]
    assert case_references(f"about case {case}, and {case} again") == [case]
    assert case_references("C-SHORT1 and xC-ABCDEFGHIJ and C-abcdefghij") == []


def test_a_tweet_quoting_a_case_reference_lands_in_that_case() -> None:
    _, first = thread(None, resolved("m1"), POLICY)
    case = threaded(first).case_id
    tweet = resolved(
        "t1",
        customer="cus_twitter",
        channel="twitter",
        sender="@ana_l",
        text=f"still waiting, case {case}",
    )
    state, joined = thread(None, tweet, POLICY)
    assert threaded(joined).case_id == case
    assert threaded(joined).evidence == f"case reference {case} in the text"
    assert state.open_case_id == case  # the next tweet joins it too


def test_the_subject_reference_is_evidence_too() -> None:
    case = case_id_for("someone", "email:x")
    _, joined = thread(None, resolved("m9", subject=f"Re: [#{case}] refund"), POLICY)
    assert threaded(joined).case_id == case
    assert "in the subject" in threaded(joined).evidence


def test_open_case_joins_only_within_the_threading_window() -> None:
    state, first = thread(None, resolved("m1"), POLICY)
    state, inside = thread(state, resolved("m2", T0 + timedelta(days=2)), POLICY)
    assert threaded(inside).case_id == threaded(first).case_id
    _, outside = thread(state, resolved("m3", T0 + timedelta(days=6)), POLICY)
    assert threaded(outside).opens_case
    assert threaded(outside).case_id != threaded(first).case_id
    assert "threading window" in threaded(outside).evidence


def test_auto_reply_never_opens_a_case_but_joins_its_thread() -> None:
    auto = {"auto_reply": True, "auto_reply_reason": "auto-submitted: auto-replied"}
    state, dropped = thread(None, resolved("ooo-1", metadata=auto), POLICY)
    assert isinstance(dropped, NotThreaded)
    assert dropped.reason == "auto_reply_without_case"
    assert state.open_case_id is None and state.case_ids == []
    state, first = thread(state, resolved("m1", thread_ref="<t1@x>"), POLICY)
    _, note = thread(state, resolved("ooo-2", in_reply_to="<t1@x>", metadata=auto), POLICY)
    assert threaded(note).case_id == threaded(first).case_id
    assert not threaded(note).opens_case


def test_forum_posts_share_their_topics_case_and_staff_posts_never_open_it() -> None:
    topic = {"channel": "community", "thread_ref": "42", "sender": "ana"}
    _, question = thread(None, resolved("p1", **topic, metadata={"kind": "topic"}), POLICY)
    assert threaded(question).case_id == thread_case_id("community", "42")
    assert threaded(question).opens_case
    staff = {**topic, "sender": "moderator"}
    state, answer = thread(
        None, resolved("p2", customer="cus_staff", **staff, metadata={"staff": True}), POLICY
    )
    assert threaded(answer).case_id == threaded(question).case_id
    assert not threaded(answer).opens_case
    assert state.open_case_id is None  # staff have no case of their own
    helper = {**topic, "sender": "bob"}
    state, answer = thread(None, resolved("p4", customer="cus_bob", **helper), POLICY)
    assert threaded(answer).case_id == threaded(question).case_id
    assert state.open_case_id is None  # bob's next email is not ana's forum question


def stage_c(result: object, state: Any = None) -> Any:
    message = threaded(result)
    return apply_message(state, message, default_ruleset())


def test_message_to_a_case_resolved_within_the_window_reopens_it() -> None:
    state, first = thread(None, resolved("m1"), POLICY)
    case = stage_c(first).state
    case.status = CaseStatus.RESOLVED
    case.resolved_at = T0 + timedelta(hours=1)
    _, again = thread(state, resolved("m2", T0 + timedelta(days=1)), POLICY)
    assert entry_for(case, threaded(again), POLICY) is None
    update = stage_c(again, case)
    assert update.state.status is CaseStatus.OPEN
    assert update.state.reopened == 1
    reopened = [e for e in update.events if e.type == "case.reopened"]
    assert len(reopened) == 1 and "within the reopen window" in reopened[0].reason
    [snapshot] = [e for e in update.events if e.type == "case.updated"]
    assert snapshot.payload["case"]["status"] == "open"  # the case store sees it reopened


def test_message_after_the_reopen_window_moves_to_a_successor_case() -> None:
    state, first = thread(None, resolved("m1"), POLICY)
    case = stage_c(first).state
    case.status = CaseStatus.RESOLVED
    case.resolved_at = T0
    _, late = thread(state, resolved("m2", T0 + timedelta(days=2, hours=1)), POLICY)
    moved = entry_for(case, threaded(late), POLICY)
    successor = successor_case_id("cus_ana", case.case_id)
    assert threaded(moved).case_id == successor
    assert threaded(moved).opens_case
    assert "reopen window" in threaded(moved).evidence
    _, later = thread(state, resolved("m3", T0 + timedelta(days=2, hours=2)), POLICY)
    assert threaded(entry_for(case, threaded(later), POLICY)).case_id == successor


def test_reference_to_an_unknown_case_opens_the_customers_successor() -> None:
    ghost = case_id_for("nobody", "x")
    _, message = thread(None, resolved("m1", text=f"case {ghost}"), POLICY)
    moved = threaded(entry_for(None, threaded(message), POLICY))
    assert moved.case_id == successor_case_id("cus_ana", ghost)
    assert moved.opens_case and "is not known" in moved.evidence


def test_staff_answer_counts_as_agent_reply_and_auto_reply_as_a_note() -> None:
    topic = {"channel": "community", "thread_ref": "42", "sender": "ana"}
    _, question = thread(None, resolved("p1", **topic, metadata={"kind": "topic"}), POLICY)
    case = stage_c(question).state
    assert case.awaiting_reply_since == T0
    staff = {**topic, "sender": "moderator", "metadata": {"staff": True}}
    at = T0 + timedelta(hours=1)
    _, answer = thread(None, resolved("p2", at, customer="cus_staff", **staff), POLICY)
    update = stage_c(answer, case)
    assert update.state.agent_replies == 1 and update.state.contacts == 1
    assert update.state.awaiting_reply_since is None
    assert update.state.facts(at + timedelta(hours=5)).unanswered_for == timedelta(0)
    assert update.state.messages[-1].tags == ["staff"]
    auto = {"auto_reply": True, "auto_reply_reason": "x-autoreply"}
    _, note = thread(None, resolved("a1", at, thread_ref="42", channel="community", metadata=auto))
    noted = stage_c(note, update.state)
    assert noted.state.contacts == 1
    assert noted.state.messages[-1].direction == "note"
    assert noted.state.messages[-1].tags == ["auto_reply"]
    assert "kept as a note" in noted.events[0].reason


def test_staff_answer_to_an_unknown_topic_is_dropped_with_a_reason() -> None:
    staff = {
        "channel": "community",
        "thread_ref": "7",
        "sender": "mod",
        "metadata": {"staff": True},
    }
    _, answer = thread(None, resolved("p9", customer="cus_staff", **staff), POLICY)
    dropped = entry_for(None, threaded(answer), POLICY)
    assert isinstance(dropped, NotThreaded) and dropped.reason == "case_unknown"


COMMUNITY_RULES = """
version: 1
calendars:
  always: 24x7
sla:
  forum:
    calendar: always
    targets:
      normal: {first_response: 4h}
escalations:
  forum:
    - {on: breach, clock: first_response, queue: community-experts, notify: [forum-leads]}
queues:
  general: {}
  community-experts: {}
routes:
  queue: general
  priority: normal
  routes:
    - name: forum
      when: {channel: community}
      sla: forum
      escalation: forum
      continue: true
    - name: community-unanswered
      when: {channel: community, case.unanswered_for: {at_least: 4h}}
      queue: community-experts
"""


def test_unanswered_forum_question_escalates_and_a_staff_answer_stops_the_clock() -> None:
    from rules import compile_sources
    from streams.casework import fire_clocks

    ruleset = compile_sources({"forum.yaml": COMMUNITY_RULES})
    topic = {"channel": "community", "thread_ref": "42", "sender": "ana"}
    _, question = thread(None, resolved("p1", **topic, metadata={"kind": "topic"}), POLICY)
    opened = apply_message(None, threaded(question), ruleset).state
    assert opened.queue == "general"
    # nobody answers: the first_response clock breaches at 4h and escalates the case
    breached = fire_clocks(opened, ruleset, T0 + timedelta(hours=4, seconds=1))
    assert breached.state.queue == "community-experts"
    [escalated] = [e for e in breached.events if e.type == "case.escalated"]
    assert escalated.payload["escalation"]["notify"] == ["forum-leads"]
    # a bump post after 4h matches the case.unanswered_for route by itself too
    _, bump = thread(None, resolved("p2", T0 + timedelta(hours=5), **topic), POLICY)
    assert apply_message(opened, threaded(bump), ruleset).state.matched[-1] == (
        "community-unanswered"
    )
    # a staff answer within the window is the first response: the clock is met
    staff = {**topic, "sender": "moderator", "metadata": {"staff": True}}
    at = T0 + timedelta(hours=1)
    _, answer = thread(None, resolved("p3", at, customer="cus_staff", **staff), POLICY)
    answered = apply_message(opened, threaded(answer), ruleset)
    assert "sla.met" in [e.type for e in answered.events]
    later = fire_clocks(answered.state, ruleset, T0 + timedelta(hours=5))
    assert later.state.queue == "general" and not later.events


def test_an_accepted_answer_by_a_member_meets_the_first_response_clock() -> None:
    from rules import compile_sources

    ruleset = compile_sources({"forum.yaml": COMMUNITY_RULES})
    topic = {"channel": "community", "thread_ref": "42", "sender": "ana"}
    _, question = thread(None, resolved("p1", **topic, metadata={"kind": "topic"}), POLICY)
    opened = apply_message(None, threaded(question), ruleset).state
    at = T0 + timedelta(hours=2)
    solution = {**topic, "sender": "bob", "metadata": {"accepted_answer": True}}
    _, accepted = thread(None, resolved("accepted:9", at, customer="cus_bob", **solution), POLICY)
    update = apply_message(opened, threaded(accepted), ruleset)
    assert "sla.met" in [e.type for e in update.events]
    assert update.state.messages[-1].tags == ["accepted_answer"]
    assert update.state.contacts == 1 and update.state.agent_replies == 1
