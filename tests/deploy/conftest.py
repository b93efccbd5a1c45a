"""One running Escalator stack (worker, ingress, projection) shared by the deploy tests.

The stack gets its own topic prefix and sees every kind of traffic the dashboards and alerts
look at: a valid message routed end to end, a request the ingress refuses, a raw record the
worker dead-letters and a record the projection cannot read. Its `/metrics` pages are scraped
once everything has been counted.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from schemas import Topics
from tests.kafka_support import delete_topics_with_prefix, produce
from tests.stack_support import Stack, escalator_stack

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


def _scrape_all(urls: dict[str, str]) -> dict[str, str]:
    return {name: httpx.get(f"{url}/metrics", timeout=5).text for name, url in urls.items()}


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
        and 'escalator_projection_errors_total{reason="malformed"}' in projection
    )


@pytest.fixture(scope="session")
def scraped_stack(
    kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ScrapedStack]:
    """Worker, ingress and projection on a private topic prefix, after one of each event."""
    prefix = f"t{uuid.uuid4().hex[:8]}."
    workdir: Path = tmp_path_factory.mktemp("deploy-stack")
    topics = Topics(prefix)
    with escalator_stack(kafka_bootstrap, prefix, workdir) as stack:
        stack.start_worker()
        stack.start_ingress()
        stack.start_projection()
        urls = {
            "worker": stack.worker_url,
            "ingress": stack.ingress_url,
            "projection": stack.projection_url,
        }
        accepted = httpx.post(f"{stack.ingress_url}/v1/messages", json=VALID_MESSAGE, timeout=30)
        assert accepted.status_code == 202, accepted.text
        refused = httpx.post(f"{stack.ingress_url}/v1/messages", content=b"{not json", timeout=30)
        assert refused.status_code == 400 or refused.status_code == 422, refused.text
        produce(kafka_bootstrap, topics.inbound, [(b"broken", b"not a message")])
        produce(kafka_bootstrap, topics.case_events, [(b"broken", b"not an event")])
        deadline = time.monotonic() + 90
        expositions = _scrape_all(urls)
        while not _counted(expositions):
            if time.monotonic() > deadline:
                pytest.fail(f"the stack never counted every kind of traffic:\n{expositions}")
            time.sleep(0.5)
            expositions = _scrape_all(urls)
        yield ScrapedStack(stack, urls, expositions)
    delete_topics_with_prefix(kafka_bootstrap, prefix)
