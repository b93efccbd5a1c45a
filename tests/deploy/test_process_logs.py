"""The stack's processes log JSON lines, with case and trace ids, and no personal data."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.deploy.conftest import ScrapedStack

pytestmark = pytest.mark.kafka


def json_lines(stack: ScrapedStack, name: str) -> list[dict[str, Any]]:
    """The JSON log records a process wrote (faust's start-up banner is not a log record)."""
    process = next(p for p in stack.stack.started if p.name == name)
    text = process.log_path.read_text(errors="replace")
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


@pytest.mark.parametrize("name", ["worker-0", "ingress", "projection"])
def test_every_process_logs_json(scraped_stack: ScrapedStack, name: str) -> None:
    records = json_lines(scraped_stack, name)
    assert records, f"{name} wrote no JSON log line"
    for record in records:
        assert {"time", "level", "logger", "message", "case_id", "trace_id"} <= set(record)


def test_projection_log_names_the_record_and_hides_its_body(scraped_stack: ScrapedStack) -> None:
    malformed = [r for r in json_lines(scraped_stack, "projection") if "malformed" in r["message"]]
    assert malformed, "the projection did not log the malformed record it skipped"
    assert malformed[0]["trace_id"].startswith("partition ")
    whole_log = next(p for p in scraped_stack.stack.started if p.name == "projection")
    # the record's body was b"not an event": redaction keeps it out of the log
    assert "not an event" not in whole_log.log_path.read_text()
