"""The console's case page in Debian's chromium: the customer's history shows an earlier case's
messages from another channel, its promises and escalations, and the case's effort figures
sit next to the SLA clocks; the history pages on to later entries.

The store is filled by applying case events directly; nothing here publishes an action.
"""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import uvicorn
from playwright.sync_api import expect

from queues.desk import create_desk_app
from schemas import CaseEvent
from schemas.ids import event_id_for
from tests.desk.browser import chromium, screenshot_path
from tests.desk.conftest import DeskWorld
from tests.queues.effort_builders import Story

UNUSED_BROKER = "localhost:1"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture
def served(desk_world: DeskWorld) -> Iterator[str]:
    """The desk app served over HTTP on a free port (a browser needs a real server)."""
    app = create_desk_app(
        database_url=desk_world.database_url,
        producer_config={"bootstrap.servers": UNUSED_BROKER},
        actions_topic="t.agent.actions",
    )
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=free_port(), log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "the desk did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{server.config.port}"
    server.should_exit = True
    thread.join(timeout=10)


def test_the_case_page_shows_an_earlier_case_from_another_channel(
    desk_world: DeskWorld, served: str
) -> None:
    start = datetime.now(UTC) - timedelta(days=10)
    earlier = Story("zoe").opens(start, channel="sms", text="My router blinks red")
    earlier.replies(start + timedelta(hours=1), "Please restart it")
    earlier.resolves(start + timedelta(hours=2))
    current = Story("zoe", number=2).opens(start + timedelta(days=3), text="Red again, by email")
    current.writes(start + timedelta(days=3, minutes=5), "chat", "and now on chat")
    promise = CaseEvent(
        event_id=event_id_for(current.case_id, "case.acknowledged", "1"),
        case_id=current.case_id,
        type="case.acknowledged",
        at=start + timedelta(days=3, seconds=3),
        reason="acknowledged on email with the first-response promise",
        payload={"promise": {"text": "Monday 10:00 CET"}},
    )
    desk_world.apply([*earlier.events, *current.events, promise])
    desk_world.add("gina", "general")

    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(f"{served}/console/login")
        page.get_by_label("Agent token").fill(desk_world.tokens["gina"])
        page.get_by_role("button", name="Log in").click()
        expect(page).to_have_url(re.compile(r"/console/queue$"))
        page.goto(f"{served}/console/cases/{current.case_id}")

        history = page.locator("#customer-history")
        expect(history.get_by_role("heading", name="Customer history")).to_be_visible()
        earlier_entries = history.locator(f"li[data-case-id='{earlier.case_id}']")
        sms = earlier_entries.filter(has_text="My router blinks red")
        expect(sms).to_have_count(1)
        expect(sms.locator(".channel-name")).to_have_text("SMS")
        expect(earlier_entries.filter(has_text="Please restart it")).to_have_count(1)
        expect(
            history.locator(".history-event").filter(has_text="Monday 10:00 CET")
        ).to_contain_text("Promise")
        texts = history.locator(".history-message .text").all_inner_texts()
        assert texts == [
            "My router blinks red",
            "Please restart it",
            "Red again, by email",
            "and now on chat",
        ]

        effort = page.locator("#case-effort")
        expect(effort).to_contain_text("Customer messages")
        expect(
            effort.locator("div").filter(has_text="Customer messages").locator("dd")
        ).to_have_text("2")
        expect(
            effort.locator("div").filter(has_text="Channel switches").locator("dd")
        ).to_have_text("1")
        expect(effort.get_by_role("link", name=earlier.case_id)).to_be_visible()  # came back
        page.screenshot(path=screenshot_path("console-customer-history.png"), full_page=True)
