"""`escalator demo` shows the customer's side: deliveries in its outbox, escalations, pages.

The demo runs as a process on its embedded broker, as `make demo` runs it, for a short
while. Its reply service must deliver agents' replies (reply webhook), mail (SMTP relay) and
on-call pages (the pager's incoming webhook) into the outbox folder; the demo agents
must escalate a case with a reason and acknowledge a page; the projection's `/metrics`
must carry the customer-effort families with measured resolutions; and the final tally
must say all of it.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from email import message_from_bytes
from email.policy import default as mail_policy
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

RUN_SECONDS = 60
"""Traffic time: long enough for 20 s first-response targets to breach and be paged."""
DEADLINE_SECONDS = 600.0
URL = re.compile(r"(?P<name>[a-z_]+): (?P<url>(?:http://)?[\w.]+:\d+\S*)")
TALLY = re.compile(r"^(?P<name>[a-z_0-9]+): (?P<value>\d+)\s*$", re.MULTILINE)
EFFORT_FAMILIES = {
    "escalator_case_contacts",
    "escalator_case_channel_switches",
    "escalator_repeat_contacts",
    "escalator_cases_resolved",
    "escalator_first_contact_resolved",
}


def _effort_families(url: str) -> dict[str, float]:
    """Effort family name → its samples' total (the histograms' `_count`), if exposed."""
    try:
        text = httpx.get(url, timeout=5).text
    except httpx.HTTPError:
        return {}
    found: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        if family.name in EFFORT_FAMILIES:
            found[family.name] = sum(
                s.value
                for s in family.samples
                if s.name.endswith(("_count", "_total")) or s.name == family.name
            )
    return found


def test_the_demo_delivers_to_its_outbox_pages_on_call_and_measures_effort(
    tmp_path: Path,
) -> None:
    demo = subprocess.Popen(
        [sys.executable, "-m", "escalator", "demo", "--rate", "5", "--duration", str(RUN_SECONDS)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**os.environ, "COLUMNS": "400", "TMPDIR": str(tmp_path)},
        start_new_session=True,
    )
    lines: list[str] = []

    def read() -> None:
        assert demo.stdout is not None
        for raw in demo.stdout:
            lines.append(raw.decode(errors="replace"))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    effort: dict[str, float] = {}
    try:
        deadline = time.monotonic() + DEADLINE_SECONDS
        while not any(line.startswith("outbox: ") for line in lines):
            assert demo.poll() is None, "".join(lines)[-3000:]
            assert time.monotonic() < deadline, "".join(lines)[-3000:]
            time.sleep(0.5)
        urls = {m["name"]: m["url"] for m in URL.finditer("".join(lines))}
        outbox_line = next(line for line in lines if line.startswith("outbox: "))
        outbox = Path(outbox_line.removeprefix("outbox: ").strip())
        assert outbox.parent.parent == tmp_path, outbox
        while demo.poll() is None:
            assert time.monotonic() < deadline, "".join(lines)[-3000:]
            seen = _effort_families(urls["projection_metrics"])
            if seen:
                effort = seen
            time.sleep(2)
    finally:
        if demo.poll() is None:
            os.killpg(demo.pid, signal.SIGKILL)
    reader.join(timeout=10)
    text = "".join(lines)
    assert demo.returncode == 0, text[-3000:]

    webhook = outbox / "webhook.jsonl"
    deliveries = [json.loads(line) for line in webhook.read_text().splitlines()]
    replies = [d for d in deliveries if d.get("auto_submitted") is not True]
    assert replies and all(r["case_id"].startswith("C-") and r["text"] for r in replies)
    mails = [
        message_from_bytes(path.read_bytes(), policy=mail_policy)
        for path in sorted(outbox.glob("*.eml"))
    ]
    agent_mails = [m for m in mails if m["Auto-Submitted"] != "auto-replied"]
    assert agent_mails and all("[#C-" in str(m["Subject"]) for m in agent_mails)
    pages = [json.loads(line) for line in (outbox / "pages.jsonl").read_text().splitlines()]
    assert pages and all(
        p["pager"] == "oncall" and "until acknowledged" in p["text"] for p in pages
    )

    tally = {m["name"]: int(m["value"]) for m in TALLY.finditer(text.split("final tally")[-1])}
    assert tally["messages_unrouted"] == 0
    assert tally["agent_escalations"] > 0, tally
    assert tally["pages_sent"] > 0 and tally["pages_acknowledged"] > 0, tally
    assert tally["pages_delivered"] == len(pages)
    assert tally["replies_delivered"] == len(replies) + len(agent_mails)
    assert tally["resolutions_with_effort"] > 0, tally
    assert "first_contact_resolved" in tally and "repeat_contacts" in tally

    assert set(effort) == EFFORT_FAMILIES, effort
    assert effort["escalator_case_contacts"] > 0, effort
