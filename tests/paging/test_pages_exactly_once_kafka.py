"""Pages through the reply service on the real broker: each page order goes out once.

The same page event written twice (a worker restarted mid-batch), a restart with lost
offsets, a crash in the middle of a text: no one is paged twice by one order. A text whose
send was interrupted is reported in doubt (`page.failed`), never sent again; a PagerDuty
order in the same state is sent again, since PagerDuty drops a repeat of its dedup key.
An order that keeps failing becomes a `page.failed` event.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest

from connectors.outbound._pages import page_orders_in
from connectors.outbound.ledger import Outcome
from connectors.outbound.notify import Notifier, NotifyConfig
from connectors.outbound.pagers import Pagers
from connectors.outbound.service import DeliveryService, RetryPolicy
from schemas import CaseEvent, Topics
from tests.connectors.peers import eventually
from tests.connectors.plugin_support import senders
from tests.connectors.test_outbound import all_committed, failed_events, publish
from tests.connectors.test_outbound_exactly_once import ledger_for
from tests.kafka_support import create_topics
from tests.paging.providers import Providers, providers
from tests.paging.test_pagers import breached, pagers

pytestmark = pytest.mark.kafka


@contextmanager
def service(
    bootstrap: str, topics: Topics, world: Providers, group_id: str | None = None, **keys: str
) -> Iterator[DeliveryService]:
    create_topics(bootstrap, [topics.case_events, topics.dlq, topics.reply_deliveries])
    with httpx.Client(timeout=10) as client:
        running = DeliveryService(
            {"bootstrap.servers": bootstrap},
            topics,
            senders(client),
            Notifier(NotifyConfig(), client),
            RetryPolicy(attempts=3, first_backoff_seconds=0.05, max_backoff_seconds=0.2),
            group_id=group_id,
            from_beginning=True,
            pagers=Pagers(pagers(world, **keys).config, client),
        )
        thread = threading.Thread(target=running.run, daemon=True)
        thread.start()
        try:
            yield running
        finally:
            running.stop()
            thread.join(timeout=30)


def page_event() -> CaseEvent:
    """Stage C's first page of a breached case (every provider of tests.paging.test_pagers)."""
    return breached()[1]


def test_a_page_written_twice_and_read_again_after_a_restart_goes_out_once(
    kafka_bootstrap: str, topics: Topics
) -> None:
    event = page_event()
    key = "C-ABCDEFGHIJ/breach:first_response#1/step0"
    with providers() as world:
        publish(kafka_bootstrap, topics, event, event)
        with service(kafka_bootstrap, topics, world):
            world.wait(lambda: len(world.texts) >= 2 and bool(world.pagerduty_events(key)))
            assert eventually(lambda: all_committed(kafka_bootstrap, topics))
        with service(kafka_bootstrap, topics, world, group_id=f"{topics.prefix}other"):
            assert eventually(
                lambda: all_committed(kafka_bootstrap, topics, f"{topics.prefix}other")
            )
    assert world.pagerduty_events(key) == ["trigger"]
    assert world.alerts[key]["events"] == ["create"]
    assert sorted(text["To"] for text in world.texts) == ["+15550100", "+15550101"]
    assert len([m for m in world.slack if "webhook" in m]) == 1


def test_a_text_interrupted_mid_send_is_reported_in_doubt_and_never_sent_again(
    kafka_bootstrap: str, topics: Topics
) -> None:
    event = page_event()
    orders = {(o.via, o.recipient): o for o in page_orders_in(event)}
    create_topics(kafka_bootstrap, [topics.case_events, topics.dlq, topics.reply_deliveries])
    crashed = ledger_for(kafka_bootstrap, topics)  # what a service killed mid-send leaves
    for interrupted in (orders[("sms", "+15550100")], orders[("pagerduty", None)]):
        crashed.record(interrupted.ledger_key, Outcome.SENDING, event.case_id, "cases.events/0/0")
    crashed.close()
    key = "C-ABCDEFGHIJ/breach:first_response#1/step0"
    with providers() as world:
        publish(kafka_bootstrap, topics, event)
        with service(kafka_bootstrap, topics, world):
            [failed] = failed_events(kafka_bootstrap, topics, 1, "page.failed")
            assert eventually(lambda: all_committed(kafka_bootstrap, topics))
    assert failed.payload["reason"] == "in_doubt" and failed.payload["via"] == "sms"
    assert "+15550100" not in [text["To"] for text in world.texts]
    assert [text["To"] for text in world.texts] == ["+15550101"]
    assert world.pagerduty_events(key) == ["trigger"]  # resent: PagerDuty drops repeats


def test_a_page_that_keeps_failing_becomes_a_page_failed_event(
    kafka_bootstrap: str, topics: Topics
) -> None:
    with providers() as world:
        publish(kafka_bootstrap, topics, page_event())
        with service(kafka_bootstrap, topics, world, pd="a-key-pagerduty-refuses"):
            [failed] = failed_events(kafka_bootstrap, topics, 1, "page.failed")
    assert (failed.payload["via"], failed.payload["target"]) == ("pagerduty", "pd")
    assert failed.payload["reason"] == "http_4xx" and failed.payload["attempts"] == 1
    assert "routing_key" in failed.payload["detail"]
    assert failed.case_id == "C-ABCDEFGHIJ"
