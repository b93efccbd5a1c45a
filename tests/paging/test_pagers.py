"""Pages from the stream's own events to the providers' documented APIs (local fakes).

The events are made by stage C itself (a breach firing a paging step, an acknowledgement, a
claim), so the contract between the worker and the reply service is what is tested; the
fakes check each provider's documented request and answer as it does.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest

from connectors.email.relay import SmtpRelay
from connectors.outbound._model import DeliveryError
from connectors.outbound._pages import page_orders_in
from connectors.outbound.pagers import PagerConfig, Pagers
from rules import compile_sources
from schemas import AgentAction, CaseEvent
from streams.actions import apply_action
from streams.case_state import CaseState
from streams.casework import apply_message, fire_clocks
from tests.connectors.peers import smtp_peer
from tests.paging.providers import (
    GENIE_KEY,
    ROUTING_KEY,
    SLACK_TOKEN,
    TWILIO_SID,
    TWILIO_TOKEN,
    Providers,
    providers,
)
from tests.streams.test_casework import T0, threaded

RULES = compile_sources(
    {
        "paging.yaml": """
version: 1
sla:
  always:
    targets: {normal: {first_response: 1h}}
pagers:
  pd: {pagerduty: {severity: critical, component: support}}
  genie: {opsgenie: {priority: P2, responders: [support-leads]}}
  phones: {sms: {to: ["+15550100", "+15550101"]}}
  room: {slack: {channel: C0PAGES}}
  hook: {slack: {}}
  mail: {email: {to: [duty@example.com]}}
  everyone:
    chain:
      - {page: [pd, genie, phones, room, hook, mail]}
escalations:
  paging:
    - {on: breach, page: everyone, until: acknowledged, every: 5m}
queues: {general: {}}
routes: {queue: general, priority: normal, sla: always, escalation: paging}
"""
    }
)


@pytest.fixture
def fakes() -> Iterator[Providers]:
    with providers() as world:
        yield world


def pagers(world: Providers, smtp: SmtpRelay | None = None, **keys: str) -> Pagers:
    config = PagerConfig(
        keys={"pd": ROUTING_KEY, "genie": GENIE_KEY, "hook": f"{world.url}/hooks/T0/B0/x", **keys},
        pagerduty_events_url=f"{world.url}/v2/enqueue",
        opsgenie_api_url=world.url,
        twilio_account_sid=TWILIO_SID,
        twilio_auth_token=TWILIO_TOKEN,
        twilio_api_url=world.url,
        sms_from="+15550199",
        slack_bot_token=SLACK_TOKEN,
        slack_api_url=f"{world.url}/api",
        smtp=smtp,
        mail_from="escalator@example.com",
        console_url="https://desk.example.com",
    )
    return Pagers(config, httpx.Client(timeout=10))


def breached() -> tuple[CaseState, CaseEvent]:
    """A case whose first response breached: stage C's first page event."""
    state = apply_message(None, threaded("m-1", opens=True), RULES).state
    update = fire_clocks(state, RULES, T0 + timedelta(minutes=61))
    [page] = [e for e in update.events if e.type == "case.escalated"]
    return update.state, page


def act(state: CaseState, kind: str, agent: str, minutes: int) -> tuple[CaseState, CaseEvent]:
    action = AgentAction(
        action_id=f"{kind}-1",
        case_id=state.case_id,
        agent_id=agent,
        type=kind,  # type: ignore[arg-type]
        at=T0 + timedelta(minutes=minutes),
    )
    update = apply_action(state, action, RULES)
    assert update is not None
    wanted = {"acknowledge": "case.acknowledged_by_agent", "claim": "case.pages_resolved"}[kind]
    [event] = [e for e in update.events if e.type == wanted]
    return update.state, event


def test_a_page_reaches_every_provider_and_is_acknowledged_and_resolved_where_it_can_be(
    fakes: Providers,
) -> None:
    with smtp_peer() as mail_server:
        sender = pagers(fakes, SmtpRelay(mail_server.host, mail_server.port))
        state, event = breached()
        orders = page_orders_in(event)
        assert sorted({(o.target, o.recipient) for o in orders}) == [
            ("genie", None),
            ("hook", None),
            ("mail", None),
            ("pd", None),
            ("phones", "+15550100"),
            ("phones", "+15550101"),
            ("room", None),
        ]
        for order in orders:
            sender.send(order)
        key = "C-ABCDEFGHIJ/breach:first_response#1/step0"
        assert fakes.incidents[key]["status"] == "triggered"
        assert fakes.alerts[key]["status"] == "open"
        assert fakes.alerts[key]["priority"] == "P2"
        assert fakes.alerts[key]["responders"] == [{"name": "support-leads", "type": "team"}]
        assert sorted(t["To"] for t in fakes.texts) == ["+15550100", "+15550101"]
        assert all(t["From"] == "+15550199" for t in fakes.texts)
        assert "Escalator page 1 for case C-ABCDEFGHIJ" in fakes.texts[0]["Body"]
        assert [m.get("channel") for m in fakes.slack if "webhook" not in m] == ["C0PAGES"]
        assert [m["webhook"] for m in fakes.slack if "webhook" in m] == ["/hooks/T0/B0/x"]
        assert "https://desk.example.com/console/cases/C-ABCDEFGHIJ" in fakes.slack[0]["text"]
        [(envelope, mail)] = mail_server.wait_for(1)
        assert envelope.rcpt_tos == ["duty@example.com"]
        assert mail["Auto-Submitted"] == "auto-generated"
        assert mail["Subject"] == "[Escalator] PAGE 1: case C-ABCDEFGHIJ"

        state, acknowledged = act(state, "acknowledge", "ana", 62)
        follow_ups = page_orders_in(acknowledged)
        assert sorted(o.via for o in follow_ups) == ["opsgenie", "pagerduty"]
        for order in follow_ups:
            sender.send(order)
        assert fakes.incidents[key]["status"] == "acknowledged"
        assert fakes.alerts[key]["status"] == "acked"
        assert fakes.alerts[key]["last_user"] == "ana"

        state, resolved = act(state, "claim", "ana", 63)
        for order in page_orders_in(resolved):
            sender.send(order)
        assert fakes.pagerduty_events(key) == ["trigger", "acknowledge", "resolve"]
        assert fakes.incidents[key]["status"] == "resolved"
        assert fakes.alerts[key]["events"] == ["create", "acknowledge", "close"]


def test_provider_answers_become_permanent_or_transient_failures(fakes: Providers) -> None:
    _state, event = breached()
    pd = next(o for o in page_orders_in(event) if o.via == "pagerduty")
    with pytest.raises(DeliveryError) as wrong_key:
        pagers(fakes, pd="not-the-key").send(pd)
    assert wrong_key.value.permanent and wrong_key.value.reason == "http_4xx"
    assert "routing_key" in wrong_key.value.detail
    fakes.fail_next = 1
    with pytest.raises(DeliveryError) as busy:
        pagers(fakes).send(pd)
    assert not busy.value.permanent and busy.value.reason == "http_5xx"
    unconfigured = Pagers(PagerConfig(), httpx.Client())
    with pytest.raises(DeliveryError) as missing:
        unconfigured.send(pd)
    assert missing.value.permanent and "ESCALATOR_PAGER_KEYS" in missing.value.detail
