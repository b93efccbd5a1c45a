"""Process logging: plain text or one JSON object per line, optionally with personal data redacted.

`ESCALATOR_LOG_FORMAT=json` makes every record a JSON object with `time`, `level`, `logger`,
`message`, and the `case_id` and `trace_id` of the work it is about (from `extra=` on the
log call, or from `log_context`), plus any other `extra` fields. `ESCALATOR_LOG_REDACT=true`
replaces message bodies and personal data (e-mail addresses, phone numbers, raw record
previews, `text`/`subject`/`sender`/`customer` fields) with placeholders, in both formats.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, Literal

LogFormat = Literal["text", "json"]

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
CONTEXT_FIELDS = ("case_id", "trace_id")
"""Fields every JSON record carries (null when the work is about no case or trace)."""
PERSONAL_FIELDS = frozenset(
    {"text", "body", "subject", "sender", "customer", "email", "phone", "attachments"}
)
"""`extra` fields replaced by a placeholder when redacting."""

_case_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("case_id", default=None)
_trace_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("trace_id", default=None)

# LogRecord's own attributes: anything else on a record came from `extra=`.
_STANDARD = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName"}

_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_PHONE = re.compile(r"(?<![\w.])\+?\d[\d ()-]{6,}\d(?![\w.])")
_BYTES = re.compile(r"""(?<!\w)b(['"])(?:\\.|(?!\1).)*\1""")
_QUOTED_FIELD = re.compile(
    r"""(?P<key>["']?(?:text|body|subject|sender|input_value)["']?\s*[:=]\s*)(?P<q>["'])(?:\\.|(?!(?P=q)).)*(?P=q)"""
)
REDACTED = "[redacted]"


@contextmanager
def log_context(*, case_id: str | None = None, trace_id: str | None = None) -> Iterator[None]:
    """Attach a case id and/or trace id to every record logged inside the block."""
    tokens = []
    if case_id is not None:
        tokens.append((_case_id, _case_id.set(case_id)))
    if trace_id is not None:
        tokens.append((_trace_id, _trace_id.set(trace_id)))
    try:
        yield
    finally:
        for var, token in reversed(tokens):
            var.reset(token)


def redact_text(text: str) -> str:
    """`text` with e-mail addresses, phone numbers, raw bytes and quoted bodies replaced."""
    text = _BYTES.sub(REDACTED, text)
    text = _QUOTED_FIELD.sub(
        lambda m: f"{m.group('key')}{m.group('q')}{REDACTED}{m.group('q')}", text
    )
    text = _EMAIL.sub("[email]", text)
    return _PHONE.sub("[phone]", text)


class ContextFilter(logging.Filter):
    """Copies the current `log_context` onto each record (an explicit `extra=` wins)."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Always keeps the record; only adds the context fields."""
        if getattr(record, "case_id", None) is None:
            record.case_id = _case_id.get()
        if getattr(record, "trace_id", None) is None:
            record.trace_id = _trace_id.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message, case_id, trace_id, extras."""

    def __init__(self, redact: bool = False) -> None:
        super().__init__()
        self.redact = redact

    def format(self, record: logging.LogRecord) -> str:
        """The record as a single line of JSON."""
        message = record.getMessage()
        document: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": redact_text(message) if self.redact else message,
        }
        for name in CONTEXT_FIELDS:
            document[name] = getattr(record, name, None)
        for name, value in record.__dict__.items():
            if name in _STANDARD or name in CONTEXT_FIELDS or name.startswith("_"):
                continue
            document[name] = REDACTED if self.redact and name in PERSONAL_FIELDS else value
        if record.exc_info:
            trace = self.formatException(record.exc_info)
            document["exception"] = redact_text(trace) if self.redact else trace
        return json.dumps(document, default=str, ensure_ascii=False)


class RedactingTextFormatter(logging.Formatter):
    """The plain text format, with personal data replaced."""

    def format(self, record: logging.LogRecord) -> str:
        """The formatted line, redacted."""
        return redact_text(super().format(record))


def make_formatter(log_format: LogFormat, redact: bool) -> logging.Formatter:
    """The formatter for a format and redaction choice."""
    if log_format == "json":
        return JsonFormatter(redact=redact)
    return RedactingTextFormatter(TEXT_FORMAT) if redact else logging.Formatter(TEXT_FORMAT)


def configure_logging(level: str, log_format: LogFormat = "text", redact: bool = False) -> None:
    """Send every logger's records to stderr in the chosen format (replaces root handlers)."""
    handler = logging.StreamHandler()
    handler.setFormatter(make_formatter(log_format, redact))
    handler.addFilter(ContextFilter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())


def dict_config(level: str, log_format: LogFormat = "text", redact: bool = False) -> dict[str, Any]:
    """The same set-up as a `logging.config.dictConfig` dict (faust's worker takes one)."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"context": {"()": ContextFilter}},
        "formatters": {
            "escalator": {"()": make_formatter, "log_format": log_format, "redact": redact}
        },
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "escalator",
                "filters": ["context"],
            }
        },
        "root": {"level": level.upper(), "handlers": ["stderr"]},
    }
