"""The providers' acknowledgement webhooks at the desk: signature-checked, then one `acknowledge`.

The attacker's side first: no signature, a wrong one, a body changed after signing, a secret
the desk does not hold, an Opsgenie call without the shared secret, a door with no secret
configured — all 401, nothing published. A genuine PagerDuty v3 `incident.acknowledged` (or
Opsgenie `Acknowledge`) of one of our pages publishes one action in the acknowledger's name,
with an id derived from the provider's event (a redelivery is the same action).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from queues.desk.pager_webhooks import PagerWebhookSecrets
from schemas import AgentAction
from tests.desk.conftest import DESK_ORIGIN, DeskWorld
from tests.kafka_support import consume_until, create_topics
from tests.queues.case_event_builders import case_id, conversation
from tests.security.desk_support import desk_app, sqlite_world

SECRET = "pd-webhook-secret"
OLD_SECRET = "pd-old-secret"
GENIE_SECRET = "genie-shared-secret"


@pytest.fixture
def world(tmp_path: Path) -> Iterator[DeskWorld]:
    with sqlite_world(tmp_path) as desk_world:
        desk_world.apply(conversation("ana", messages=1))
        yield desk_world


def sign(body: bytes, secret: str) -> str:
    return "v1=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def pagerduty_event(
    key: str, event_id: str = "01DRF6BV78DEFGHIJK56789", agent_type: str = "user_reference"
) -> bytes:
    """A v3 `incident.acknowledged` as PagerDuty documents it."""
    document: dict[str, Any] = {
        "event": {
            "id": event_id,
            "event_type": "incident.acknowledged",
            "resource_type": "incident",
            "occurred_at": "2026-12-05T10:31:30.000Z",
            "agent": {
                "html_url": "https://acme.pagerduty.com/users/P123ABC",
                "id": "P123ABC",
                "self": "https://api.pagerduty.com/users/P123ABC",
                "summary": "Jane Doe",
                "type": agent_type,
            },
            "client": None,
            "data": {
                "id": "Q2KURS8RXYZ123",
                "type": "incident",
                "status": "acknowledged",
                "incident_key": key,
                "title": "Escalator page 1",
            },
        }
    }
    return json.dumps(document).encode()


def opsgenie_event(alias: str) -> bytes:
    """An Opsgenie webhook `Acknowledge` action."""
    return json.dumps(
        {
            "action": "Acknowledge",
            "alert": {
                "alertId": "8418d193-2dab-4490-b331-8c02cdd196b7",
                "message": "Escalator page 1",
                "alias": alias,
                "username": "sam@example.com",
                "userId": "daed1180-0ce8-438b-8f8e-57e1a5920a2d",
            },
            "source": {"name": "", "type": "web"},
            "integrationName": "Escalator",
        }
    ).encode()


def client(world: DeskWorld, bootstrap: str, topic: str, **secrets: Any) -> TestClient:
    app = desk_app(
        world,
        bootstrap,
        actions_topic=topic,
        pager_webhooks=PagerWebhookSecrets(**secrets),
    )
    return TestClient(app, base_url=DESK_ORIGIN)


def test_unsigned_forged_or_unconfigured_webhooks_are_401(world: DeskWorld) -> None:
    key = f"{case_id('ana')}/breach:first_response#1/step0"
    body = pagerduty_event(key)
    with client(
        world, "localhost:1", "t.agent.actions", pagerduty=(SECRET,), opsgenie=GENIE_SECRET
    ) as http:
        assert http.post("/v1/pagers/pagerduty", content=body).status_code == 401
        wrong = {"X-PagerDuty-Signature": sign(body, "guessed")}
        assert http.post("/v1/pagers/pagerduty", content=body, headers=wrong).status_code == 401
        changed = body.replace(b"Jane Doe", b"Mallory")
        signed = {"X-PagerDuty-Signature": sign(body, SECRET)}
        assert http.post("/v1/pagers/pagerduty", content=changed, headers=signed).status_code == 401
        no_secret = http.post("/v1/pagers/opsgenie", content=opsgenie_event(key))
        assert no_secret.status_code == 401
        bad_secret = http.post(
            "/v1/pagers/opsgenie",
            content=opsgenie_event(key),
            headers={"X-Escalator-Webhook-Secret": "guess"},
        )
        assert bad_secret.status_code == 401
    with client(world, "localhost:1", "t.agent.actions") as closed:
        signed = {"X-PagerDuty-Signature": sign(body, SECRET)}
        assert closed.post("/v1/pagers/pagerduty", content=body, headers=signed).status_code == 401
        shared = {"X-Escalator-Webhook-Secret": ""}
        opsgenie = closed.post("/v1/pagers/opsgenie", content=opsgenie_event(key), headers=shared)
        assert opsgenie.status_code == 401


@pytest.mark.kafka
def test_a_signed_acknowledgement_publishes_one_acknowledge_action(
    world: DeskWorld, kafka_bootstrap: str
) -> None:
    topic = f"t{uuid.uuid4().hex[:8]}.agent.actions"
    create_topics(kafka_bootstrap, [topic])
    key = f"{case_id('ana')}/breach:first_response#1/step0"
    with client(
        world, kafka_bootstrap, topic, pagerduty=(OLD_SECRET, SECRET), opsgenie=GENIE_SECRET
    ) as http:
        body = pagerduty_event(key)
        # two signatures during a rotation: the desk holds the second
        both = f"{sign(body, 'retired')},{sign(body, SECRET)}"
        answer = http.post(
            "/v1/pagers/pagerduty", content=body, headers={"X-PagerDuty-Signature": both}
        )
        assert answer.status_code == 202 and answer.json()["outcome"] == "published"
        foreign = pagerduty_event("C-NOSUCHCASE/breach:first_response#1/step0", "other-event")
        ignored = http.post(
            "/v1/pagers/pagerduty",
            content=foreign,
            headers={"X-PagerDuty-Signature": sign(foreign, SECRET)},
        )
        assert ignored.status_code == 202 and ignored.json()["outcome"] == "ignored"
        echo = pagerduty_event(key, "our-own-ack", agent_type="service_reference")
        ours = http.post(
            "/v1/pagers/pagerduty",
            content=echo,
            headers={"X-PagerDuty-Signature": sign(echo, SECRET)},
        )
        assert ours.status_code == 202 and ours.json()["outcome"] == "ignored"
        genie = http.post(
            "/v1/pagers/opsgenie",
            content=opsgenie_event(key),
            headers={"X-Escalator-Webhook-Secret": GENIE_SECRET},
        )
        assert genie.status_code == 202 and genie.json()["outcome"] == "published"
    records = consume_until(kafka_bootstrap, topic, 2)
    actions = [AgentAction.model_validate_json(r.value or b"") for r in records]
    assert {(a.type.value, a.case_id, a.agent_id, a.action_id) for a in actions} == {
        ("acknowledge", case_id("ana"), "pagerduty:Jane Doe", "pagerduty:01DRF6BV78DEFGHIJK56789"),
        (
            "acknowledge",
            case_id("ana"),
            "opsgenie:sam@example.com",
            "opsgenie:8418d193-2dab-4490-b331-8c02cdd196b7:acknowledge",
        ),
    }
    assert all(r.key == case_id("ana").encode() for r in records)
