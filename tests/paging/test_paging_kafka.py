"""On-call paging end to end, through the real broker and the real processes.

The worker fires the breach's paging step on its SLA timer; the reply service delivers each
page to a local fake of PagerDuty's Events API v2; the page repeats (one trigger per page,
never twice) — across a worker killed and restarted between two pages — until an agent
acknowledges at the desk, which stops the repeats and acknowledges the incident; resolving
the case resolves it at PagerDuty.
"""

from __future__ import annotations

import json
import os
import signal
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.desk.stack import desk_stack
from tests.paging.providers import ROUTING_KEY, providers

RULES = Path(__file__).with_name("paging_rules.yaml")

pytestmark = pytest.mark.kafka


def at(event: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(event["at"].replace("Z", "+00:00"))


def test_a_breach_pages_until_acknowledged_and_resolving_resolves_the_incident(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    with (
        providers() as pagerduty,
        desk_stack(kafka_bootstrap, tmp_path, assigner=False, ESCALATOR_RULES=str(RULES)) as desk,
    ):
        desk.add("ana", "general")
        desk.stack.start_replies(
            ESCALATOR_PAGER_KEYS=json.dumps({"support-oncall": ROUTING_KEY}),
            ESCALATOR_PAGERDUTY_EVENTS_URL=f"{pagerduty.url}/v2/enqueue",
            ESCALATOR_REPLIES_FROM_BEGINNING="true",
        )
        [customer] = desk.send(["oncall@example.com"], text="the site is down")
        case_id = desk.wait_for_cases([customer], "ana")[customer]["case_id"]
        key = f"{case_id}/breach:first_response#1/step0"

        pagerduty.wait(lambda: pagerduty.pagerduty_events(key).count("trigger") >= 2, 120)
        # the worker dies between two pages; the repeats live in the case's state, not in it
        [worker] = [p for p in desk.stack.started if p.name.startswith("worker")]
        os.killpg(worker.process.pid, signal.SIGKILL)
        worker.process.wait(timeout=10)
        seen = pagerduty.pagerduty_events(key).count("trigger")
        desk.stack.start_worker()
        pagerduty.wait(lambda: pagerduty.pagerduty_events(key).count("trigger") >= seen + 2, 180)
        answer = desk.call("POST", f"/v1/cases/{case_id}/acknowledge", "ana")
        assert answer.status_code in (200, 202), answer.text
        pagerduty.wait(lambda: "acknowledge" in pagerduty.pagerduty_events(key), 120)
        assert pagerduty.incidents[key]["status"] == "acknowledged"

        detail = desk.wait_for(
            f"/v1/cases/{case_id}",
            "ana",
            lambda body: any(e["type"] == "case.acknowledged_by_agent" for e in body["events"]),
        )
        [ack] = [e for e in detail["events"] if e["type"] == "case.acknowledged_by_agent"]
        assert ack["payload"]["agent"] == "ana"
        assert [page["key"] for page in ack["payload"]["pages"]] == [key]

        time.sleep(3 * 2 + 1)  # three intervals of `every`: no page may come after the ack
        detail = desk.call("GET", f"/v1/cases/{case_id}", "ana").json()
        pages = [
            e
            for e in detail["events"]
            if e["type"] == "case.escalated" and (e["payload"].get("escalation") or {}).get("page")
        ]
        assert len(pages) >= 2
        assert all(at(page) < at(ack) for page in pages), (ack["at"], [p["at"] for p in pages])
        numbers = [page["payload"]["escalation"]["page"]["number"] for page in pages]
        assert numbers == list(range(1, len(pages) + 1))
        events = pagerduty.pagerduty_events(key)
        # every page delivered exactly once, then the acknowledgement
        assert events == ["trigger"] * len(pages) + ["acknowledge"], events

        resolved = desk.call("POST", f"/v1/cases/{case_id}/resolve", "ana")
        assert resolved.status_code == 200, resolved.text
        pagerduty.wait(lambda: pagerduty.incidents[key]["status"] == "resolved", 120)
        assert pagerduty.pagerduty_events(key)[-1] == "resolve"
        final = desk.wait_for(
            f"/v1/cases/{case_id}",
            "ana",
            lambda body: any(e["type"] == "case.pages_resolved" for e in body["events"]),
        )
        [closing] = [e for e in final["events"] if e["type"] == "case.pages_resolved"]
        assert closing["payload"]["by"] == "ana" and closing["payload"]["action"] == "resolve"
