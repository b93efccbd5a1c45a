"""The agent console end to end, in a real browser on the real stack.

Worker, HTTP ingress, projection and desk run as processes on the real broker, with the
case store on the real PostgreSQL server; Playwright drives Debian's chromium headless.
An agent logs in with a token, a customer message posted to the ingress appears in the
queue without a reload, and the agent claims it, replies (by keyboard), sets it waiting
on the customer and resolves it. Then the store and the `cases.events` topic must agree.
A second test works at 200% zoom by keyboard only, and sees another agent's claim appear on
the open case page without a reload. Screenshots of the queue and the case view land in
tests/artifacts/.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect
from sqlalchemy.engine import make_url

from queues import make_engine, make_session_factory
from queues.desk import Role
from queues.desk.reads import DeskReads
from schemas import CaseEvent
from tests import postgres_support
from tests.desk.browser import chromium, screenshot_path
from tests.desk.stack import DeskStack, desk_stack
from tests.kafka_support import consume_until

pytestmark = pytest.mark.kafka

TIMEOUT_MS = 90_000
"""How long the browser waits for the stream (a cold worker on a busy 2-core machine)."""


@pytest.fixture(scope="module")
def desk(
    kafka_bootstrap: str, postgres_server: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DeskStack]:
    server = make_url(postgres_server)
    database = postgres_support.create_database(server)
    url = database.render_as_string(hide_password=False)
    try:
        with desk_stack(
            kafka_bootstrap,
            tmp_path_factory.mktemp("console"),
            assigner=False,
            ESCALATOR_DATABASE_URL=url,
        ) as world:
            world.add("ana", "general")
            world.add("bo", "general")
            world.add("lee", "general", "tier2", role=Role.LEAD)
            world.stack.start_ingress()
            yield world
    finally:
        postgres_support.drop_database(server, database)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


def csp_violations(page: Page) -> list[str]:
    """Collects what chromium refuses under the desk's Content-Security-Policy on `page`:
    its console errors about the policy, and the page's own violation events."""
    found: list[str] = []
    page.on(
        "console",
        lambda message: (
            found.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    page.add_init_script(
        "document.addEventListener('securitypolicyviolation', (event) => console.error("
        "`Content Security Policy violation: ${event.violatedDirective} ${event.blockedURI}`));"
    )
    return found


def log_in(page: Page, desk: DeskStack, agent: str) -> None:
    page.goto(f"{desk.stack.desk_url}/console/login")
    page.get_by_label("Agent token").fill(desk.tokens[agent])
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(re.compile(r"/console/queue$"))


def post_message(desk: DeskStack, sender: str, subject: str, text: str, channel: str) -> None:
    answer = httpx.post(
        f"{desk.stack.ingress_url}/v1/messages",
        json={
            "channel": channel,
            "external_id": f"e2e-{uuid.uuid4().hex[:8]}",
            "sender": sender,
            "subject": subject,
            "text": text,
            "sent_at": datetime.now(UTC).isoformat(),
        },
        timeout=30,
    )
    assert answer.status_code == 202, answer.text


def expect_notice(page: Page, did: str) -> None:
    notice = page.locator("#notice")
    expect(notice).to_contain_text(f"{did}: done", timeout=TIMEOUT_MS)


def case_events_on_topic(desk: DeskStack, case_id: str, done: Any) -> list[CaseEvent]:
    def events(records: Any) -> list[CaseEvent]:
        unique: dict[str, CaseEvent] = {}
        for record in records:
            event = CaseEvent.model_validate_json(record.value or b"")
            if event.case_id == case_id:
                unique.setdefault(event.event_id, event)
        return list(unique.values())

    records = consume_until(
        desk.bootstrap, desk.topics.case_events, lambda rs: done(events(rs)), timeout=60
    )
    return events(records)


def stored_history(desk: DeskStack, case_id: str) -> dict[str, Any]:
    """The case as the desk's store holds it (messages, events, status)."""
    engine = make_engine(desk.stack.env["ESCALATOR_DATABASE_URL"])
    try:
        history = DeskReads(make_session_factory(engine)).history(case_id)
    finally:
        engine.dispose()
    assert history is not None
    return history


def stored_events(desk: DeskStack, case_id: str) -> dict[str, dict[str, Any]]:
    return {event["event_id"]: event for event in stored_history(desk, case_id)["events"]}


def store_and_topic_agree(
    desk: DeskStack, case_id: str, timeout: float = 60
) -> tuple[dict[str, dict[str, Any]], list[CaseEvent]]:
    """The case's events in the store and on `cases.events`, once both hold the same ids."""
    deadline = time.monotonic() + timeout
    while True:
        stored = stored_events(desk, case_id)
        wanted = set(stored)
        on_topic = case_events_on_topic(
            desk, case_id, lambda events, wanted=wanted: wanted <= {e.event_id for e in events}
        )
        topic_ids = {event.event_id for event in on_topic}
        if topic_ids == wanted:
            return stored, on_topic
        if time.monotonic() > deadline:
            raise AssertionError(
                f"store and topic disagree: only stored {wanted - topic_ids}, "
                f"only on the topic {[e.type for e in on_topic if e.event_id not in stored]}"
            )
        time.sleep(0.5)  # the projection is still catching up


def test_an_agent_works_a_new_case_from_the_queue_to_resolved(
    desk: DeskStack, browser: Browser
) -> None:
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    refused = csp_violations(page)
    log_in(page, desk, "ana")
    page.get_by_label("Presence").select_option("online")
    page.get_by_role("button", name="Set presence").click()
    expect(page.get_by_label("Presence")).to_have_value("online")
    agent = desk.directory.agent("ana")
    assert agent is not None and agent.presence.value == "online"
    deadline = time.monotonic() + 30
    while agent is None or agent.heartbeat_at is None:  # the open console sends heartbeats
        assert time.monotonic() < deadline, "the console sent no heartbeat"
        time.sleep(0.2)
        agent = desk.directory.agent("ana")
    rows = page.locator("#queue-rows tr[data-case-id]")
    expect(rows).to_have_count(0)
    page.evaluate("window.__notReloaded = true")

    sender = f"e2e-{uuid.uuid4().hex[:6]}@example.com"
    text = "My parcel is stuck, this is urgent, please help"
    post_message(desk, sender, "Parcel stuck in customs", text, channel="chat")

    row = rows.filter(has_text="Parcel stuck in customs")
    expect(row).to_have_count(1, timeout=TIMEOUT_MS)
    assert page.evaluate("window.__notReloaded === true"), "the queue page was reloaded"
    expect(row).to_have_class(re.compile(r"\bis-new\b"))
    expect(row.locator(".priority")).to_have_text("urgent")
    clock = row.locator(".sla")
    expect(clock).to_have_class(re.compile(r"\bsla-running\b"))
    expect(clock.locator(".sla-time")).to_have_text(re.compile(r"^\d+m \d\ds left$"))
    expect(row).to_contain_text("Chat")
    expect(row).to_contain_text("unclaimed")
    expect(page.locator("#queue-announcer")).to_have_text("1 new case in your queue")
    page.screenshot(path=screenshot_path("console-queue.png"), full_page=True)
    case_id = row.get_attribute("data-case-id")
    assert case_id

    row.get_by_role("link").click()
    expect(page).to_have_url(re.compile(rf"/console/cases/{case_id}$"))
    conversation = page.locator(".messages")
    expect(conversation.locator(".message")).to_have_count(1)
    expect(conversation).to_contain_text(text)
    expect(conversation.locator(".channel-chat")).to_contain_text("Chat")
    why = page.locator("section", has=page.get_by_role("heading", name="Why it is here"))
    expect(why.locator("code", has_text="urgent")).to_have_count(1)
    expect(why).to_contain_text("priority urgent")
    expect(page.get_by_role("heading", name="The customer's other cases")).to_be_visible()

    page.get_by_role("button", name="Claim").click()
    expect_notice(page, "Claim")
    expect(page.locator("#case-owner")).to_have_text("you")

    # Reply with the keyboard only: focus the box, type, tab to the send button, press Enter.
    page.get_by_label(re.compile("Message to the customer, sent by Chat")).focus()
    page.keyboard.type("We have asked the courier; you will hear from us today.")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "send-reply"
    page.keyboard.press("Enter")
    expect_notice(page, "Reply")
    reply = conversation.locator(".message-outbound")
    expect(reply).to_contain_text("you will hear from us today")
    expect(reply.locator(".channel-chat")).to_have_count(1)

    page.get_by_role("button", name="Waiting on customer").click()
    expect_notice(page, "Waiting on customer")
    expect(page.locator("#case-status")).to_have_text("waiting on customer")
    expect(page.locator(".clocks .sla-paused")).not_to_have_count(0)
    page.screenshot(path=screenshot_path("console-case.png"), full_page=True)

    with page.expect_request(lambda r: r.method == "POST" and r.url.endswith("/act")) as sent:
        page.get_by_role("button", name="Resolve").click()
    form = parse_qs(sent.value.post_data or "")
    assert form["action"] == ["resolve"]
    expect_notice(page, "Resolve")
    expect(page.locator("#case-status")).to_have_text("resolved")
    expect(page.get_by_role("button", name="Reopen")).to_be_visible()
    # The same form sent again (a double click, a resent POST) is the same action: applied once.
    again = page.request.post(
        f"{desk.stack.desk_url}/console/cases/{case_id}/act",
        form={"action": "resolve", "action_id": form["action_id"][0]},
        headers={"Origin": desk.stack.desk_url},  # as the browser sends it with a form
    )
    assert again.ok
    assert re.search(r"Resolve</strong>:\s*done\.", again.text()), again.text()[:2000]
    page.goto(f"{desk.stack.desk_url}/console/queue")
    expect(rows.filter(has_text="Parcel stuck in customs")).to_have_count(0)
    # Everything above ran under the desk's strict Content-Security-Policy.
    assert refused == [], refused
    page.close()

    # The store and the events agree.
    history = stored_history(desk, case_id)
    assert history["status"] == "resolved"
    assert [(m["direction"], m["channel"]) for m in history["messages"]] == [
        ("inbound", "chat"),
        ("outbound", "chat"),
    ]
    assert history["messages"][1]["sender"] == "ana"
    [assignment] = history["assignments"]
    assert assignment["agent"] == "ana" and assignment["accepted_at"] is not None
    stored, on_topic = store_and_topic_agree(desk, case_id)
    for event in on_topic:
        assert stored[event.event_id]["type"] == event.type
        assert stored[event.event_id]["reason"] == event.reason
    types = [event.type for event in on_topic]
    assert types.count("case.resolved") == 1, types
    for expected in (
        "case.opened",
        "case.routed",
        "case.claimed",
        "case.status_changed",
        "sla.paused",
        "case.resolved",
    ):
        assert expected in types, types
    actions = [
        e.payload["action"]
        for e in on_topic
        if e.type != "message.appended" and "action" in e.payload
    ]
    assert {a["agent_id"] for a in actions} == {"ana"}
    assert all(a["action_id"].startswith("console-") for a in actions)


def test_at_200_percent_zoom_by_keyboard_and_live_when_another_agent_claims(
    desk: DeskStack, browser: Browser, tmp_path: Path
) -> None:
    # 200% zoom of a 1280x900 window lays the page out in 640x450 CSS pixels at 2x density.
    context = browser.new_context(viewport={"width": 640, "height": 450}, device_scale_factor=2)
    page = context.new_page()
    refused = csp_violations(page)
    log_in(page, desk, "ana")
    sender = f"zoom-{uuid.uuid4().hex[:6]}@example.com"
    post_message(desk, sender, "Refund", "Where is my refund?", channel="email")
    row = page.locator("#queue-rows tr[data-case-id]").filter(has_text="Where is my refund?")
    expect(row).to_have_count(1, timeout=TIMEOUT_MS)

    def no_sideways_scroll() -> None:
        overflow = page.evaluate(
            "document.scrollingElement.scrollWidth - document.scrollingElement.clientWidth"
        )
        assert overflow <= 0, f"the page scrolls sideways by {overflow}px"

    no_sideways_scroll()
    # The table became one card per case: no header row on screen, each cell labelled.
    assert page.evaluate(
        "document.querySelector('table.queue thead').getBoundingClientRect().right <= 0"
    )
    expect(row.locator("td[data-label='SLA']")).to_be_visible()
    page.screenshot(path=screenshot_path("console-queue-200pct.png"), full_page=True)

    # Keyboard only: skip link, then Tab to the case link and open it with Enter.
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    link = row.get_by_role("link")
    for _ in range(30):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.classList.contains('case-link')"):
            break
    else:
        pytest.fail("the case link is not reachable with Tab")
    assert page.evaluate("document.activeElement.href") == link.evaluate("a => a.href")
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/console/cases/C-"))
    no_sideways_scroll()

    # Every control on the case page is reachable with Tab, named, and shows its focus.
    reached: list[str] = []
    page.keyboard.press("Tab")
    for _ in range(40):
        focus = page.evaluate(
            """() => {
                const el = document.activeElement;
                const style = getComputedStyle(el);
                const label = el.labels && el.labels.length ? el.labels[0].textContent : '';
                return {
                    tag: el.tagName,
                    name: (el.getAttribute('aria-label') || label || el.textContent || '').trim(),
                    outline: style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) > 0,
                    visible: el.getBoundingClientRect().width > 0,
                };
            }"""
        )
        if focus["tag"] == "BODY":
            break
        assert focus["name"], f"a focusable {focus['tag']} without a name"
        assert focus["outline"], f"{focus['name']!r} shows no focus outline"
        assert focus["visible"], f"{focus['name']!r} is focused but not on screen"
        reached.append(" ".join(str(focus["name"]).split()))
        page.keyboard.press("Tab")
    for control in ("Claim", "Waiting on customer", "Resolve", "Send reply by Email", "Log out"):
        assert any(name.startswith(control) for name in reached), (control, reached)
    assert any(name.startswith("Message to the customer") for name in reached), reached
    page.screenshot(path=screenshot_path("console-case-200pct.png"), full_page=True)

    # Another agent claims the case through the API: the open page shows it without a reload.
    page.evaluate("window.__notReloaded = true")
    case_id = page.url.rsplit("/", 1)[-1]
    claimed = desk.call("POST", f"/v1/cases/{case_id}/claim", "bo")
    assert claimed.status_code == 200, claimed.text
    expect(page.locator("#case-owner")).to_have_text("bo", timeout=TIMEOUT_MS)
    assert page.evaluate("window.__notReloaded === true"), "the case page was reloaded"

    # Acting on a case someone else owns is refused by the stream, and the page says why.
    page.get_by_role("button", name="Claim").click()
    notice = page.locator("#notice")
    expect(notice).to_contain_text("Claim: not done.", timeout=TIMEOUT_MS)
    expect(notice).to_contain_text("bo")
    expect(notice).to_have_attribute("role", "alert")
    assert refused == [], refused
    context.close()

    # A lead gives the case to ana, then moves it to another queue.
    lead = browser.new_page(viewport={"width": 1280, "height": 900})
    lead_refused = csp_violations(lead)
    log_in(lead, desk, "lee")
    lead.goto(f"{desk.stack.desk_url}/console/cases/{case_id}")
    lead.get_by_label("Assign to").select_option("ana")
    lead.get_by_role("button", name="Assign", exact=True).click()
    expect_notice(lead, "Assign")
    expect(lead.locator("#case-owner")).to_have_text("ana (not accepted yet)")
    lead.get_by_label("Move to queue").select_option("tier2")
    lead.get_by_role("button", name="Move").click()
    expect_notice(lead, "Transfer")
    expect(lead.locator(".facts")).to_contain_text("tier2")
    assert lead_refused == [], lead_refused
    lead.close()
