"""The console's pages without the stream: log in, guards, what the queue and a case show,
and (in Debian's chromium, on a controlled clock) the SLA countdowns turning amber and red.

The store is filled by applying case events directly; nothing here publishes an action.
"""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient
from playwright.sync_api import expect

from queues.desk import Role, create_desk_app
from schemas import AcknowledgementPayload, CaseEvent, Priority, PromiseView
from schemas.ids import event_id_for
from tests.desk.browser import chromium, screenshot_path
from tests.desk.conftest import DeskWorld, desk_client
from tests.queues.case_event_builders import (
    appended,
    case_id,
    conversation,
    opened,
    routed,
)

UNUSED_BROKER = "localhost:1"  # these tests publish nothing


def rfc3339(at: datetime) -> str:
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


def with_clock(event: CaseEvent, **clock: datetime | str) -> CaseEvent:
    """The routing event with its case's first_response clock replaced."""
    payload = dict(event.payload)
    case = dict(payload["case"])
    case["sla"] = {
        "first_response": {
            key: rfc3339(value) if isinstance(value, datetime) else value
            for key, value in clock.items()
        }
    }
    payload["case"] = case
    return event.model_copy(update={"payload": payload})


def with_status(event: CaseEvent, status: str) -> CaseEvent:
    """The routing event with its case in another status."""
    payload = dict(event.payload)
    payload["case"] = {**payload["case"], "status": status}
    return event.model_copy(update={"payload": payload})


def as_customer(event: CaseEvent, customer_id: str) -> CaseEvent:
    """The event rewritten as if another customer had sent it (same case id)."""
    payload = dict(event.payload)
    if "customer_id" in payload:
        payload["customer_id"] = customer_id
    if "case" in payload:
        payload["case"] = {**payload["case"], "customer_id": customer_id}
    return event.model_copy(update={"payload": payload})


def seed(world: DeskWorld) -> None:
    """general: an urgent and a normal case (the urgent one matched a rule); billing: one case.
    The customer `ana` also has an earlier case, resolved long ago."""
    earlier = [as_customer(e, "ana") for e in conversation("ana-earlier", messages=1)]
    earlier[-1] = with_status(earlier[-1], "resolved")
    world.apply(
        [
            *earlier,
            *conversation("ana", messages=2),
            opened("bo"),
            appended("bo", 1, channel="sms", text="Lawyer letter incoming"),
            routed(
                "bo",
                priority=Priority.URGENT,
                matched=["legal-threat"],
                tags=["legal"],
                routing="legal",
            ),
            *conversation("cy", messages=1, queue="billing"),
        ],
    )


def options(html: str, select: str) -> list[str] | None:
    """The option values of the page's select called `select`, or None without one."""
    found = re.search(rf'<select[^>]*name="{select}"[^>]*>(.*?)</select>', html, re.S)
    return None if found is None else re.findall(r'<option value="([^"]*)"', found.group(1))


def login(http: TestClient, world: DeskWorld, agent: str) -> None:
    answer = http.post(
        "/console/login", data={"token": world.tokens[agent]}, follow_redirects=False
    )
    assert answer.status_code == 303, answer.text


def client(world: DeskWorld) -> TestClient:
    return desk_client(world, UNUSED_BROKER, "t.agent.actions")


def test_logging_in_keeps_the_token_in_an_httponly_strict_cookie(desk_world: DeskWorld) -> None:
    desk_world.add("gina", "general")
    with client(desk_world) as http:
        assert http.get("/console/queue", follow_redirects=False).headers["location"] == (
            "/console/login"
        )
        wrong = http.post("/console/login", data={"token": "esk_wrong"})
        assert wrong.status_code == 401
        assert "That token is not valid" in wrong.text
        assert "escalator_token" not in http.cookies

        answer = http.post(
            "/console/login", data={"token": desk_world.tokens["gina"]}, follow_redirects=False
        )
        assert answer.status_code == 303
        assert answer.headers["location"] == "/console/queue"
        cookie = answer.headers["set-cookie"]
        assert cookie.startswith("escalator_token=")
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie
        # The API takes the same cookie: the page's script follows /v1/events with it.
        assert http.get("/v1/me").json()["name"] == "gina"

        http.post("/console/logout")
        assert http.get("/console/queue", follow_redirects=False).status_code == 303
        assert http.get("/console/queue/rows").status_code == 401


def test_my_queue_lists_my_queues_most_urgent_first(desk_world: DeskWorld) -> None:
    seed(desk_world)
    desk_world.add("gina", "general")
    with client(desk_world) as http:
        login(http, desk_world, "gina")
        page = http.get("/console/queue").text
        rows = http.get("/console/queue/rows").text

    listed = re.findall(r'data-case-id="([^"]+)"', rows)
    assert listed == [case_id("bo"), case_id("ana")]  # urgent first; billing's case not shown
    assert case_id("cy") not in page
    assert "Lawyer letter incoming" in rows  # the latest customer message as the preview
    assert 'class="channel channel-sms"' in rows and ">SMS<" in rows
    assert 'data-live-queue="/console/queue/rows"' in page


def test_the_case_page_shows_the_conversation_the_decisions_and_the_actions(
    desk_world: DeskWorld,
) -> None:
    seed(desk_world)
    desk_world.add("gina", "general", "billing")
    desk_world.add("lee", "general", role=Role.LEAD)
    with client(desk_world) as http:
        login(http, desk_world, "gina")
        page = http.get(f"/console/cases/{case_id('bo')}").text
        own = http.get(f"/console/cases/{case_id('ana')}").text
        login(http, desk_world, "lee")
        as_lead = http.get(f"/console/cases/{case_id('bo')}").text

    assert "Lawyer letter incoming" in page
    assert "<code>legal-threat</code>" in page  # the matched rule
    assert "root route: queue general, priority urgent" in page  # the decision's reason
    assert "Message to the customer, sent by SMS" in page  # the reply goes on the case's channel
    for words in ("Claim", "Waiting on customer", "Resolve"):
        assert f">{words}</button>" in page
    assert own.count('class="message message-inbound"') == 2
    # Agents move cases between their own queues; only leads assign, to the queue's members.
    assert options(page, "queue") == ["billing"]
    assert options(page, "to_agent") is None
    assert options(as_lead, "to_agent") == ["gina", "lee"]


def test_other_queues_cases_and_cross_site_posts_are_refused(desk_world: DeskWorld) -> None:
    seed(desk_world)
    desk_world.add("gina", "general")
    with client(desk_world) as http:
        login(http, desk_world, "gina")
        forbidden = http.get(f"/console/cases/{case_id('cy')}")
        assert forbidden.status_code == 403
        assert "Not your queue" in forbidden.text
        assert http.get("/console/cases/C-NOSUCHCASE").status_code == 404
        cross_site = http.post(
            f"/console/cases/{case_id('ana')}/act",
            data={"action": "claim"},
            headers={"Origin": "https://evil.example"},
        )
        assert cross_site.status_code == 403
        unknown = http.post(f"/console/cases/{case_id('ana')}/act", data={"action": "delete"})
        assert unknown.status_code == 422


# --- countdowns in a real browser ---------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture
def served(desk_world: DeskWorld) -> Iterator[str]:
    """The desk app served over HTTP on a free port (a browser needs a real server)."""
    app: FastAPI = create_desk_app(
        database_url=desk_world.database_url,
        producer_config={"bootstrap.servers": UNUSED_BROKER},
        actions_topic="t.agent.actions",
    )
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "the desk did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


def test_countdowns_turn_amber_at_warning_and_red_at_breach(
    desk_world: DeskWorld, served: str
) -> None:
    now = datetime.now(UTC)
    later = routed("later", priority=Priority.HIGH, routing="clock")
    warned = routed("warned", priority=Priority.HIGH, routing="clock")
    breached = routed("breached", priority=Priority.HIGH, routing="clock")
    events: list[Any] = []
    for customer in ("later", "warned", "breached"):
        events += [opened(customer), appended(customer, 1, text=f"message of {customer}")]
    desk_world.apply(
        [
            *events,
            with_clock(
                later,
                due_at=now + timedelta(minutes=20),
                warn_at=now + timedelta(minutes=15),
                state="running",
            ),
            with_clock(
                warned,
                due_at=now + timedelta(minutes=5),
                warn_at=now - timedelta(minutes=1),
                state="warning",
            ),
            with_clock(
                breached,
                due_at=now - timedelta(minutes=2),
                warn_at=now - timedelta(minutes=8),
                state="breached",
            ),
        ],
    )
    desk_world.add("gina", "general")

    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.clock.install(time=now)  # the page's timers run on a clock the test moves
        page.goto(f"{served}/console/login")
        page.get_by_label("Agent token").fill(desk_world.tokens["gina"])
        page.get_by_role("button", name="Log in").click()

        def clock_of(customer: str) -> Any:
            return page.locator(f"tr[data-case-id='{case_id(customer)}'] .sla")

        rows = page.locator("#queue-rows tr[data-case-id]")
        expect(rows).to_have_count(3)
        # The order is the SLA's: breached first, then the warned one, then the later one.
        assert [row.get_attribute("data-case-id") for row in rows.all()] == [
            case_id("breached"),
            case_id("warned"),
            case_id("later"),
        ]
        page.clock.run_for(1000)
        expect(clock_of("later")).to_have_class(re.compile(r"\bsla-running\b"))
        expect(clock_of("later").locator(".sla-time")).to_have_text(
            re.compile(r"^\d+m \d\ds left$")
        )
        expect(clock_of("warned")).to_have_class(re.compile(r"\bsla-warning\b"))
        expect(clock_of("warned").locator(".sla-time")).to_contain_text("left · warning")
        expect(clock_of("breached")).to_have_class(re.compile(r"\bsla-breached\b"))
        expect(clock_of("breached").locator(".sla-time")).to_contain_text("overdue 2m")
        colours = {
            customer: clock_of(customer).evaluate("el => getComputedStyle(el).backgroundColor")
            for customer in ("later", "warned", "breached")
        }
        assert len(set(colours.values())) == 3, colours
        page.screenshot(path=screenshot_path("console-queue-clocks.png"), full_page=True)

        # Without a reload, the later case's clock turns amber at its warning time, red at due.
        page.clock.fast_forward("15:01")
        expect(clock_of("later")).to_have_class(re.compile(r"\bsla-warning\b"))
        expect(clock_of("later")).to_have_css("background-color", colours["warned"])
        page.clock.fast_forward("05:00")
        expect(clock_of("later")).to_have_class(re.compile(r"\bsla-breached\b"))
        expect(clock_of("later")).to_have_css("background-color", colours["breached"])
        expect(clock_of("later").locator(".sla-time")).to_contain_text("overdue 0m")


def with_mail_auth(event: CaseEvent, **auth: str) -> CaseEvent:
    """The `message.appended` event as the worker writes it for an authenticated mail."""
    return event.model_copy(update={"payload": {**event.payload, "auth": auth}})


def test_the_case_page_shows_each_mails_spf_dkim_and_dmarc(desk_world: DeskWorld) -> None:
    spoofed = {"spf": "fail", "dkim": "none", "dmarc": "fail", "from_domain": "victim.test"}
    genuine = {"spf": "pass", "dkim": "pass", "dmarc": "pass", "from_domain": "example.com"}
    desk_world.apply(
        [
            opened("dee"),
            with_mail_auth(appended("dee", 1, text="Please wire the money"), **spoofed),
            with_mail_auth(appended("dee", 2, text="Second mail"), **genuine),
            appended("dee", 3, channel="sms", text="An SMS has no mail authentication"),
            routed("dee"),
        ]
    )
    desk_world.add("gina", "general")
    with client(desk_world) as http:
        login(http, desk_world, "gina")
        page = http.get(f"/console/cases/{case_id('dee')}").text
    verdicts = re.findall(r'<p class="mail-auth mail-auth-(\w+)"[^>]*>(.*?)</p>', page, re.S)
    assert [(kind, " ".join(text.split())) for kind, text in verdicts] == [
        ("fail", "From victim.test: DMARC fail · SPF fail · DKIM none"),
        ("pass", "From example.com: DMARC pass · SPF pass · DKIM pass"),
    ]


def acknowledgement(customer: str, kind: str, due_at: str, local: str) -> CaseEvent:
    event_id = event_id_for(case_id(customer), "case.acknowledged", kind)
    return CaseEvent(
        event_id=event_id,
        case_id=case_id(customer),
        type="case.acknowledged",
        at=datetime(2026, 11, 20, 9, 0, tzinfo=UTC),
        reason="customer acknowledged",
        payload=AcknowledgementPayload(
            kind=kind,
            template="default",
            message_key=f"ack:{event_id}",
            customer_id=customer,
            channel="email",
            recipient="ana@example.com",
            text="...",
            promise=PromiseView(
                clock="first_response", due_at=due_at, local=local, timezone="Europe/Berlin"
            ),
        ).model_dump(mode="json"),
    )


def test_the_desk_shows_what_the_customer_was_promised(desk_world: DeskWorld) -> None:
    first = acknowledgement(
        "eve", "opened", "2026-11-20T13:00:00Z", "Friday 20 November, 14:00 CET"
    )
    sooner = acknowledgement(
        "eve", "update", "2026-11-20T10:00:00Z", "Friday 20 November, 11:00 CET"
    )
    held = CaseEvent(
        event_id=event_id_for_suppressed(sooner),
        case_id=case_id("eve"),
        type="acknowledgement.suppressed",
        at=sooner.at,
        reason="one went to them lately",
        payload={"message_key": sooner.payload["message_key"], "reason": "window"},
    )
    desk_world.apply([opened("eve"), appended("eve", 1), routed("eve"), first, sooner, held])
    request = appended("eve", 2, channel="webform", text="Nobody called me back")
    escalated = CaseEvent(
        event_id=event_id_for(case_id("eve"), "case.customer_escalated", "2"),
        case_id=case_id("eve"),
        type="case.customer_escalated",
        at=request.at,
        reason="the customer asked to escalate",
        payload={"message_key": request.payload["message_key"], "escalations": 1},
    )
    desk_world.apply([request, escalated])
    desk_world.apply([opened("fay"), appended("fay", 1), routed("fay")])
    desk_world.add("gina", "general")
    with client(desk_world) as http:
        login(http, desk_world, "gina")
        detail = http.get(f"/v1/cases/{case_id('eve')}").json()
        page = http.get(f"/console/cases/{case_id('eve')}").text
        unpromised = http.get(f"/console/cases/{case_id('fay')}").text
        none = http.get(f"/v1/cases/{case_id('fay')}").json()["promises"]
    assert [(p["kind"], p["due_at"], p["delivery"]) for p in detail["promises"]] == [
        ("opened", "2026-11-20T13:00:00Z", "sent or sending"),
        ("update", "2026-11-20T10:00:00Z", "suppressed"),
    ]
    assert detail["promises"][-1]["local"] == "Friday 20 November, 11:00 CET"
    assert "Promised to the customer" in page
    assert '<time datetime="2026-11-20T10:00:00Z">Friday 20 November, 11:00 CET</time>' in page
    assert none == []
    requests = re.findall(
        r'<p class="escalation-request">.*?</p>\s*'
        r'(?:<p class="subject">.*?</p>\s*)?<p class="text">(.*?)</p>',
        page,
        re.S,
    )
    assert requests == ["Nobody called me back"]
    assert "case.customer_escalated" in page
    assert "the customer was promised nothing yet" in unpromised


def event_id_for_suppressed(event: CaseEvent) -> str:
    return event_id_for(event.case_id, "acknowledgement.suppressed", event.event_id)
