"""JSON logs with case_id and trace_id, and redaction of bodies and personal data."""

from __future__ import annotations

import json
import logging

import pytest

from escalator.observability.logs import (
    ContextFilter,
    JsonFormatter,
    configure_logging,
    log_context,
    make_formatter,
    redact_text,
)


def record(message: str, *args: object, **extra: object) -> logging.LogRecord:
    """A record as a logger would make it, with `extra` fields, through the context filter."""
    made = logging.makeLogRecord(
        {
            "name": "escalator.test",
            "levelname": "WARNING",
            "levelno": 30,
            "msg": message,
            "args": args or None,
            **extra,
        }
    )
    ContextFilter().filter(made)
    return made


def test_json_lines_carry_case_and_trace_ids() -> None:
    formatter = JsonFormatter()
    with log_context(case_id="C-ABC123", trace_id="t-1"):
        line = formatter.format(record("routed to %s", "billing"))
    document = json.loads(line)
    assert document["message"] == "routed to billing"
    assert document["case_id"] == "C-ABC123" and document["trace_id"] == "t-1"
    assert document["level"] == "WARNING" and document["logger"] == "escalator.test"
    # outside the block the fields are null, and an explicit extra wins
    assert json.loads(formatter.format(record("idle")))["case_id"] is None
    explicit = json.loads(formatter.format(record("x", case_id="C-XYZ999", queue="general")))
    assert explicit["case_id"] == "C-XYZ999" and explicit["queue"] == "general"


def test_redaction_hides_bodies_and_personal_data() -> None:
    formatter = JsonFormatter(redact=True)
    line = formatter.format(
        record(
            "skipping malformed record; value starts %r from %s at %s",
            b'{"text": "my card 4111 is stolen"}',
            "ann@example.com",
            "+49 151 2345678",
            text="my card is stolen",
            queue="billing",
        )
    )
    document = json.loads(line)
    assert "4111" not in line and "ann@example.com" not in line and "2345678" not in line
    assert "stolen" not in line
    assert document["text"] == "[redacted]" and document["queue"] == "billing"
    assert "[email]" in document["message"] and "[phone]" in document["message"]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ('reply {"text": "hello Bob", "queue": "x"}', 'reply {"text": "[redacted]", "queue": "x"}'),
        ("from bob@example.org", "from [email]"),
        ("case C-ABC123 at 2026-11-26T09:30:00Z", "case C-ABC123 at 2026-11-26T09:30:00Z"),
        ("partition 3 offset 1234567", "partition 3 offset 1234567"),
    ],
)
def test_redact_text(raw: str, expected: str) -> None:
    assert redact_text(raw) == expected


def test_configure_logging_writes_json_to_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    try:
        configure_logging("INFO", "json", redact=True)
        with log_context(case_id="C-ABC123"):
            logging.getLogger("escalator.demo").info("reply to %s", "ann@example.com")
        document = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
        assert document["case_id"] == "C-ABC123"
        assert document["message"] == "reply to [email]"
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])


def test_text_format_stays_plain_unless_redacting() -> None:
    plain = make_formatter("text", redact=False).format(record("from %s", "ann@example.com"))
    assert plain.endswith("from ann@example.com")
    redacted = make_formatter("text", redact=True).format(record("from %s", "ann@example.com"))
    assert redacted.endswith("from [email]")
