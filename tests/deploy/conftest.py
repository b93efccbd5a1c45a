"""One running Escalator stack (worker, ingress, projection) shared by the deploy tests.

The stack gets its own topic prefix and sees every kind of traffic the dashboards and alerts
look at: a valid message routed end to end, a request the ingress refuses, a raw record the
worker dead-letters and a record the projection cannot read. Its `/metrics` pages are scraped
once everything has been counted.
"""

from __future__ import annotations

import re
import sqlite3
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from confluent_kafka import Producer

from connectors.publisher import PRODUCER_DEFAULTS
from schemas import AgentAction, AgentActionType, Topics
from tests.kafka_support import delete_topics_with_prefix, produce
from tests.stack_support import Stack, escalator_stack

STACK_RULES = Path(__file__).with_name("stack_rules.yaml")
STACK_ENV = {
    "ESCALATOR_RULES": str(STACK_RULES),
    "ESCALATOR_LAG_REFRESH_SECONDS": "1",
    "ESCALATOR_UNROUTED_AFTER_SECONDS": "5",
    "ESCALATOR_LOG_FORMAT": "json",
    "ESCALATOR_LOG_REDACT": "true",
    # customer effort: resolutions are judged 3 s (of event time) after they happen
    "ESCALATOR_REPEAT_CONTACT_WINDOW": "3",
    "ESCALATOR_EFFORT_SETTLE_GRACE": "0",
}
"""Settings of the deploy tests' stack: SLA rules, lag measured every second, redacted JSON logs."""

VALID_MESSAGE = {
    "channel": "sms",
    "external_id": "deploy-1",
    "sender": "+4915100000001",
    "text": "My parcel never arrived",
    "sent_at": "2026-11-20T09:30:00+01:00",
}


@dataclass
class ScrapedStack:
    """The running stack and one scrape of each process's `/metrics`, by process name."""

    stack: Stack
    urls: dict[str, str]
    expositions: dict[str, str]


def message(external_id: str, text: str = "My parcel never arrived") -> dict[str, str]:
    """A valid inbound message from its own sender (so it opens its own case)."""
    return {
        **VALID_MESSAGE,
        "external_id": external_id,
        "sender": f"sender-{external_id}",
        "text": text,
    }


def case_of(database: Path, external_id: str, timeout_seconds: float = 60) -> str:
    """The case id the projection recorded for a message, waiting for it to arrive."""
    deadline = time.monotonic() + timeout_seconds
    while time.monotonic() < deadline:
        if database.exists():
            with sqlite3.connect(database) as connection:
                row = connection.execute(
                    "SELECT case_id FROM messages WHERE external_id = ?", (external_id,)
                ).fetchone()
            if row:
                return str(row[0])
        time.sleep(0.3)
    pytest.fail(f"the case store never recorded message {external_id}")


def act(bootstrap: str, topics: Topics, case_id: str, *actions: AgentActionType) -> None:
    """Publish agent actions on a case (keyed by case id, as `escalator cases act` does)."""
    producer = Producer({**PRODUCER_DEFAULTS, "bootstrap.servers": bootstrap})
    for kind in actions:
        action = AgentAction(
            action_id=str(uuid.uuid4()),
            case_id=case_id,
            agent_id="sre-test",
            type=kind,
            at=datetime.now(UTC),
            text="We are on it." if kind is AgentActionType.REPLY else None,
        )
        producer.produce(
            topics.agent_actions, key=case_id.encode(), value=action.model_dump_json().encode()
        )
    assert producer.flush(30) == 0


def answered_and_breached(stack: Stack, bootstrap: str, topics: Topics, tag: str) -> None:
    """One case answered in time then resolved, one left to breach its 2 s target."""
    ingress = stack.ingress_url
    answered, breaching = f"answered-{tag}", f"outage-{tag}"
    for body in (message(answered), message(breaching, "Total outage since this morning")):
        assert httpx.post(f"{ingress}/v1/messages", json=body, timeout=30).status_code == 202
    case_id = case_of(stack.workdir / "escalator.db", answered)
    act(bootstrap, topics, case_id, AgentActionType.REPLY, AgentActionType.RESOLVE)


def _scrape_all(urls: dict[str, str]) -> dict[str, str]:
    return {name: httpx.get(f"{url}/metrics", timeout=5).text for name, url in urls.items()}


MALFORMED_COUNTED = re.compile(r'escalator_projection_errors_total\{reason="malformed"\} [1-9]')


def _counted(expositions: dict[str, str]) -> bool:
    worker, ingress, projection = (
        expositions["worker"],
        expositions["ingress"],
        expositions["projection"],
    )
    return (
        'escalator_cases_routed_total{queue="' in worker
        and "escalator_messages_dead_lettered_total{" in worker
        and 'escalator_ingress_messages_rejected_total{reason="invalid_json"}' in ingress
        and 'escalator_projection_events_total{type="case.routed"}' in projection
        and MALFORMED_COUNTED.search(projection) is not None
        and "escalator_sla_breaches_total{" in worker
        and "escalator_escalations_total{" in worker
        and "escalator_dead_letter_records " in worker
        and "escalator_consumer_lag_records{" in worker
        and "escalator_sla_clocks_met_total{" in projection
        and "escalator_first_response_seconds_count{" in projection
        and "escalator_resolution_seconds_count{" in projection
        and "escalator_cases_breached{" in projection
        and "escalator_consumer_lag_records{" in projection
    )


@pytest.fixture(scope="session")
def scraped_stack(
    kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ScrapedStack]:
    """Worker, ingress and projection on a private topic prefix, after one of each event."""
    prefix = f"t{uuid.uuid4().hex[:8]}."
    workdir: Path = tmp_path_factory.mktemp("deploy-stack")
    topics = Topics(prefix)
    with escalator_stack(kafka_bootstrap, prefix, workdir, **STACK_ENV) as stack:
        stack.start_worker()
        stack.start_ingress()
        stack.start_projection()
        stack.start_desk()
        urls = {
            "worker": stack.worker_url,
            "ingress": stack.ingress_url,
            "projection": stack.projection_url,
            "desk": stack.desk_url,
        }
        accepted = httpx.post(f"{stack.ingress_url}/v1/messages", json=VALID_MESSAGE, timeout=30)
        assert accepted.status_code == 202, accepted.text
        refused = httpx.post(f"{stack.ingress_url}/v1/messages", content=b"{not json", timeout=30)
        assert refused.status_code == 400 or refused.status_code == 422, refused.text
        produce(kafka_bootstrap, topics.inbound, [(b"broken", b"not a message")])
        produce(kafka_bootstrap, topics.case_events, [(b"broken", b"not an event")])
        answered_and_breached(stack, kafka_bootstrap, topics, "first")
        deadline = time.monotonic() + 90
        expositions = _scrape_all(urls)
        while not _counted(expositions):
            if time.monotonic() > deadline:
                pytest.fail(f"the stack never counted every kind of traffic:\n{expositions}")
            time.sleep(0.5)
            expositions = _scrape_all(urls)
        yield ScrapedStack(stack, urls, expositions)
    delete_topics_with_prefix(kafka_bootstrap, prefix)
