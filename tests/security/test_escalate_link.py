"""The customer's escalation link: forged, altered, expired and replayed links are refused.

The attacker's tests come first; the last ones show the honest path: a valid link serves an
accessible form without JavaScript, and its submission is one flagged message on Kafka.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from connectors.channels import MessageSink
from connectors.escalate_page import MAX_TEXT_CHARS, escalate_router
from connectors.http_ingress import create_app
from connectors.ingress_auth import IngressAuth
from connectors.publisher import KafkaPublisher
from schemas import InboundMessage, Topics
from schemas.links import EscalationLinks, LinkRefused
from tests.kafka_support import consume_until, create_topics

LINKS = EscalationLinks("the-real-secret", "https://help.example.com", timedelta(days=30))
NOW = datetime.now(UTC)


def token(links: EscalationLinks = LINKS, issued: datetime = NOW, nonce: str = "n1") -> str:
    return links.token("C-ABCDEFGHIJ", "cus_42", nonce, issued)


@pytest.fixture
async def http(kafka_bootstrap: str, topics: Topics) -> AsyncIterator[httpx.AsyncClient]:
    create_topics(kafka_bootstrap, [topics.inbound])
    publisher = KafkaPublisher({"bootstrap.servers": kafka_bootstrap})
    router = escalate_router(LINKS, MessageSink(publisher, topics.inbound))
    app = create_app(publisher, topics, routers=[router], auth=IngressAuth.without_keys())
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://ingress") as client:
        yield client
    publisher.close()


def test_the_signer_refuses_forged_altered_expired_and_malformed_tokens() -> None:
    other = EscalationLinks("a-guessed-secret", "https://help.example.com")
    with pytest.raises(LinkRefused, match="forged"):
        LINKS.check(token(other), NOW)
    body, signature = token().split(".")
    claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    claims["c"] = "C-ZZZZZZZZZZ"  # someone else's case, the signature kept
    altered = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    with pytest.raises(LinkRefused, match="forged"):
        LINKS.check(f"{altered}.{signature}", NOW)
    with pytest.raises(LinkRefused, match="expired"):
        LINKS.check(token(issued=NOW - timedelta(days=31)), NOW)
    for junk in ("", "abc", "a.b.c", "Ünïcode.sig", "x" * 3000, f"{body}.!!!"):
        with pytest.raises(LinkRefused):
            LINKS.check(junk, NOW)
    assert LINKS.check(token(), NOW).case_id == "C-ABCDEFGHIJ"


async def test_a_forged_link_gets_404_and_publishes_nothing(
    http: httpx.AsyncClient, kafka_bootstrap: str, topics: Topics
) -> None:
    forged = token(EscalationLinks("a-guessed-secret", "https://x"))
    assert (await http.get(f"/v1/escalate/{forged}")).status_code == 404
    answer = await http.post(f"/v1/escalate/{forged}", data={"text": "escalate!"})
    assert answer.status_code == 404
    assert "not valid" in answer.text
    assert consume_until(kafka_bootstrap, topics.inbound, 1, 3.0, raise_on_timeout=False) == []


async def test_an_expired_link_gets_410(http: httpx.AsyncClient) -> None:
    expired = token(issued=NOW - timedelta(days=31))
    assert (await http.get(f"/v1/escalate/{expired}")).status_code == 410
    assert (await http.post(f"/v1/escalate/{expired}", data={"text": "x"})).status_code == 410


async def test_a_replayed_link_is_refused_and_escalates_once(
    http: httpx.AsyncClient, kafka_bootstrap: str, topics: Topics
) -> None:
    link = f"/v1/escalate/{token(nonce='replay-me')}"
    first = await http.post(link, data={"text": "nobody called back"})
    assert first.status_code == 200, first.text
    again = await http.post(link, data={"text": "and again"})
    assert again.status_code == 409
    assert (await http.get(link)).status_code == 409
    records = consume_until(kafka_bootstrap, topics.inbound, 1)
    more = consume_until(kafka_bootstrap, topics.inbound, 2, 3.0, raise_on_timeout=False)
    assert len(records) == 1 and len(more) == 1


async def test_an_over_long_text_is_refused_without_using_the_link(http: httpx.AsyncClient) -> None:
    link = f"/v1/escalate/{token(nonce='long')}"
    answer = await http.post(link, data={"text": "x" * (MAX_TEXT_CHARS + 1)})
    assert answer.status_code == 413
    assert (await http.get(link)).status_code == 200


async def test_the_page_is_an_accessible_form_without_javascript(http: httpx.AsyncClient) -> None:
    answer = await http.get(f"/v1/escalate/{token(nonce='page')}")
    assert answer.status_code == 200
    page = answer.text
    assert '<html lang="en">' in page and "<h1>Still not solved?</h1>" in page
    assert "<script" not in page.lower()
    assert '<form method="post">' in page
    assert '<label for="text">' in page and '<textarea id="text" name="text"' in page
    assert '<button type="submit">' in page
    assert answer.headers["referrer-policy"] == "no-referrer"
    assert "script-src" not in answer.headers["content-security-policy"]
    assert "default-src 'none'" in answer.headers["content-security-policy"]


async def test_submitting_publishes_one_flagged_message_that_joins_the_case(
    http: httpx.AsyncClient, kafka_bootstrap: str, topics: Topics
) -> None:
    answer = await http.post(
        f"/v1/escalate/{token(nonce='ok')}", data={"text": "Still broken <b>today</b>"}
    )
    assert answer.status_code == 200
    assert "C-ABCDEFGHIJ" in answer.text and "escalated" in answer.text
    [record] = consume_until(kafka_bootstrap, topics.inbound, 1)
    message = InboundMessage.model_validate_json(record.value or b"")
    assert message.metadata == {"escalation_request": True, "escalation_link": "ok"}
    assert message.customer.id == "cus_42"
    assert message.external_id == "escalate:ok"
    assert re.search(r"\[#C-ABCDEFGHIJ\]", message.subject or "")
    assert message.text == "Still broken <b>today</b>"
