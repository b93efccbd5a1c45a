"""The stream reads what a channel is from its traits (schemas.channels), never from its name.

A channel added to the table with the forum's traits threads like the forum, and one with
phone-number senders shares the phone handle, without a line of streams/ naming it.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from schemas import InboundMessage
from schemas import channels as channel_table
from schemas.channels import ChannelTraits
from schemas.ids import thread_case_id
from streams.identity import channel_handle
from streams.records import ResolvedMessage, ThreadedMessage
from streams.threader import is_forum_answer, thread

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


@pytest.fixture
def extra_channels(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Two channels a new plugin might bring: a second forum and a second phone channel."""
    monkeypatch.setitem(
        channel_table._CHANNELS,
        "qa-board",
        ChannelTraits("Q&A board", public_thread=True, staff_answers=True),
    )
    monkeypatch.setitem(channel_table._CHANNELS, "rcs", ChannelTraits("RCS", phone_numbers=True))
    yield


def resolved(external_id: str, customer: str, **fields: Any) -> ResolvedMessage:
    message = InboundMessage.model_validate(
        {"external_id": external_id, "text": "hello", "sent_at": T0.isoformat(), **fields}
    )
    return ResolvedMessage(
        customer_id=customer, message=message, ingested_at=T0, identity_evidence="test"
    )


def threaded(result: object) -> ThreadedMessage:
    assert isinstance(result, ThreadedMessage), result
    return result


@pytest.mark.usefixtures("extra_channels")
def test_a_channel_with_public_threads_threads_by_topic_whatever_its_name() -> None:
    post = {"channel": "qa-board", "thread_ref": "7", "sender": "ana"}
    _, question = thread(None, resolved("q1", "cus_ana", **post, metadata={"kind": "topic"}))
    assert threaded(question).case_id == thread_case_id("qa-board", "7")
    helper = {**post, "sender": "bob"}
    state, answer = thread(None, resolved("q2", "cus_bob", **helper))
    assert threaded(answer).case_id == threaded(question).case_id
    assert state.open_case_id is None  # bob joined ana's topic; it is not his case


@pytest.mark.usefixtures("extra_channels")
def test_staff_answers_count_only_on_channels_whose_traits_say_so() -> None:
    staff = {"thread_ref": "7", "sender": "mod", "metadata": {"staff": True}}
    forum = resolved("s1", "cus_mod", channel="qa-board", **staff).message
    chat = resolved("s2", "cus_mod", channel="chat", **staff).message
    assert is_forum_answer(forum)
    assert not is_forum_answer(chat)  # a chat visitor cannot make itself staff by metadata


@pytest.mark.usefixtures("extra_channels")
def test_a_channel_with_phone_number_senders_shares_the_phone_handle() -> None:
    rcs = resolved("r1", "x", channel="rcs", sender="+49 151 23456789").message
    sms = resolved("r2", "x", channel="sms", sender="+4915123456789").message
    assert channel_handle(rcs) == channel_handle(sms) == "phone:+4915123456789"
