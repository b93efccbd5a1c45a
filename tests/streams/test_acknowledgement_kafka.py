"""End to end through the real broker: ingress → worker → reply service → the customer's mailbox.

A new case is acknowledged by mail with the exact due time `rules explain` gives; the mail's
escalation link opens the ingress's page; submitting it records `case.customer_escalated`,
the example-style rule raises the priority, and the customer is told the sooner promise.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from schemas import CaseEvent, Topics
from tests.connectors.peers import smtp_peer
from tests.kafka_support import consume_until
from tests.stack_support import escalator_stack

pytestmark = pytest.mark.kafka

RULES = """\
version: 1
sla:
  standard:
    calendar: 24x7
    targets:
      normal: {first_response: 4h}
      high: {first_response: 1h}
queues:
  general: {}
acknowledgements:
  default:
    subject: "We received your message [#{{ case.reference }}]"
    text: |
      You will hear from us by {{ promise.first_response }} ({{ sla.first_response.due_at }}).
      Still not solved? {{ links.escalate }}
    update:
      subject: "Your case is escalated [#{{ case.reference }}]"
      text: "You will now hear from us by {{ promise.first_response }}."
routes:
  queue: general
  priority: normal
  sla: standard
  routes:
    - name: customer-escalated
      when: {case.customer_escalations: {at_least: 1}}
      priority: +1
"""

QUESTION = {
    "channel": "email",
    "external_id": "<q1@example.com>",
    "sender": "ana@example.com",
    "subject": "Charged twice",
    "text": "I was charged twice for order A-1234",
    "sent_at": "2026-11-20T09:30:00Z",
    "thread_ref": "<q1@example.com>",
    "customer": {"timezone": "America/New_York"},
}


def events_of(bootstrap: str, topics: Topics, kind: str, count: int) -> list[CaseEvent]:
    records = consume_until(
        bootstrap,
        topics.case_events,
        lambda rs: sum(1 for r in rs if json.loads(r.value or b"{}").get("type") == kind) >= count,
        timeout=90,
    )
    events = [CaseEvent.model_validate_json(r.value or b"") for r in records]
    return [event for event in events if event.type == kind]


def explain_due(rules: Path, message: dict[str, object], at: str) -> str:
    message_file = rules.parent / "message.json"
    message_file.write_text(json.dumps(message))
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "escalator",
            "rules",
            "explain",
            str(rules),
            "--message",
            str(message_file),
            "--at",
            at,
            "--json",
        ],
        check=True,
        capture_output=True,
        text=True,
        env=os.environ.copy(),
    )
    due: str = json.loads(done.stdout)["sla"]["first_response"]["due_at"]
    return due


def test_acknowledgement_escalation_link_and_the_sooner_promise(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    topics = Topics(topic_prefix)
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    with (
        smtp_peer() as mail_server,
        escalator_stack(
            kafka_bootstrap,
            topic_prefix,
            tmp_path,
            ESCALATOR_RULES=str(rules),
            ESCALATOR_ESCALATE_LINK_SECRET="link-secret",
        ) as stack,
    ):
        stack.start_ingress()
        stack.env["ESCALATOR_ESCALATE_LINK_URL"] = stack.ingress_url
        stack.start_worker()
        stack.start_replies(
            ESCALATOR_REPLY_FROM="help@acme.test",
            ESCALATOR_SMTP_RELAY_HOST=mail_server.host,
            ESCALATOR_SMTP_RELAY_PORT=str(mail_server.port),
            ESCALATOR_REPLIES_FROM_BEGINNING="true",
        )
        posted = httpx.post(f"{stack.ingress_url}/v1/messages", json=QUESTION, timeout=30)
        assert posted.status_code == 202, posted.text
        [(envelope, mail)] = mail_server.wait_for(1, timeout=120)
        [acknowledged] = events_of(kafka_bootstrap, topics, "case.acknowledged", 1)
        [opened] = events_of(kafka_bootstrap, topics, "case.opened", 1)
        case_id = acknowledged.case_id
        # the customer's mail: threaded, referenced, auto-submitted, with the real promise
        assert envelope.rcpt_tos == ["ana@example.com"]
        assert mail["Subject"] == f"We received your message [#{case_id}]"
        assert mail["In-Reply-To"] == "<q1@example.com>"
        assert mail["Auto-Submitted"] == "auto-replied"
        due = explain_due(rules, QUESTION, opened.at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"))
        promise = acknowledged.payload["promise"]
        assert promise["due_at"] == due
        assert promise["timezone"] == "America/New_York"
        body = mail.get_content()
        assert f"({due})" in body
        assert promise["local"] in body and re.search(r"E[SD]T \(", body)
        # the escalation link: its page, then the request
        link = re.search(r"(http://127\.0\.0\.1:\d+/v1/escalate/\S+)", body)
        assert link is not None, body
        page = httpx.get(link.group(1), timeout=30)
        assert page.status_code == 200 and "Still not solved?" in page.text
        sent = httpx.post(link.group(1), data={"text": "Nobody called me back"}, timeout=30)
        assert sent.status_code == 200, sent.text
        again = httpx.post(link.group(1), data={"text": "again"}, timeout=30)
        assert again.status_code == 409
        [escalated] = events_of(kafka_bootstrap, topics, "case.customer_escalated", 1)
        assert escalated.case_id == case_id
        assert escalated.payload["text"] == "Nobody called me back"
        # the rules raise the priority: the promise moves earlier, and the customer is told
        mails = mail_server.wait_for(2, timeout=120)
        told = events_of(kafka_bootstrap, topics, "case.acknowledged", 2)
    update = next(event for event in told if event.payload["kind"] == "update")
    assert update.payload["previous_due_at"] == due
    assert update.payload["promise"]["due_at"] < due
    (_, update_mail) = mails[1]
    assert update_mail["Subject"] == f"Your case is escalated [#{case_id}]"
    assert update_mail["Auto-Submitted"] == "auto-replied"
    assert update.payload["promise"]["local"] in update_mail.get_content()
    assert len(mail_server.mails) == 2
