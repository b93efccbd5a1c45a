"""Local fakes of the on-call providers, implementing their documented request/response contracts.

No real provider is reachable from the tests, so each fake checks what the documentation
requires and answers as the provider does:

- PagerDuty Events API v2 (`POST /v2/enqueue`): `routing_key` (the integration key it knows),
  `event_action` trigger/acknowledge/resolve, `dedup_key` (at most 255 characters; required to
  acknowledge or resolve), and for a trigger a `payload` with `summary` (at most 1024),
  `source` and `severity` (critical, error, warning, info). 202 `{"status": "success",
  "message": "Event processed", "dedup_key": …}`; 400 `{"status": "invalid event", …}`. It keeps
  one incident per dedup key: a trigger of an open incident is deduplicated.
- Opsgenie Alert API (`POST /v2/alerts`, `POST /v2/alerts/{id}/acknowledge|close`):
  `Authorization: GenieKey <key>`; a create needs `message` (at most 130 characters), `alias`
  at most 512; acknowledge and close take `identifierType=alias`. 202 `{"result": "Request
  will be processed", "took": …, "requestId": …}`; 401/422 otherwise.
- Twilio (`POST /2010-04-01/Accounts/{sid}/Messages.json`): HTTP basic auth with the account
  sid and token, form fields `To`, `From`, `Body`. 201 with the message resource.
- Slack `chat.postMessage` (Bearer token, `channel`, `text`: `{"ok": true, …}` or `{"ok":
  false, "error": …}`) and incoming webhooks (`{"text": …}` → `ok`).

`fail_next` makes the next requests answer 500 (a provider's bad moment).
"""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from escalator.demo.processes import free_port

ROUTING_KEY = "R0UT1NGKEY0000000000000000000001"
GENIE_KEY = "genie-key-1"
TWILIO_SID = "AC00000000000000000000000000000001"
TWILIO_TOKEN = "twilio-token"
SLACK_TOKEN = "xoxb-test"
SEVERITIES = {"critical", "error", "warning", "info"}


@dataclass
class Providers:
    """What the fakes received and keep."""

    url: str
    incidents: dict[str, dict[str, Any]] = field(default_factory=dict)
    """PagerDuty incidents by dedup key: status and the events in order."""
    alerts: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Opsgenie alerts by alias."""
    texts: list[dict[str, str]] = field(default_factory=list)
    slack: list[dict[str, Any]] = field(default_factory=list)
    requests: list[tuple[str, str]] = field(default_factory=list)
    fail_next: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def pagerduty_events(self, key: str) -> list[str]:
        """The event actions PagerDuty received for a dedup key, in order."""
        with self.lock:
            return list(self.incidents.get(key, {}).get("events", []))

    def wait(self, check: Any, timeout: float = 60.0) -> None:
        """Wait until `check()` holds (generous deadline; the machine may be slow)."""
        deadline = time.monotonic() + timeout
        while not check():
            if time.monotonic() > deadline:
                raise AssertionError(f"providers never got there: {self.incidents} {self.alerts}")
            time.sleep(0.05)


def _pagerduty(world: Providers, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    errors = []
    if body.get("routing_key") != ROUTING_KEY:
        errors.append("'routing_key' is invalid")
    action = body.get("event_action")
    if action not in ("trigger", "acknowledge", "resolve"):
        errors.append("'event_action' is invalid")
    key = body.get("dedup_key")
    if key is not None and (not isinstance(key, str) or len(key) > 255):
        errors.append("'dedup_key' is invalid")
    if action in ("acknowledge", "resolve") and not key:
        errors.append("'dedup_key' is required")
    if action == "trigger":
        payload = body.get("payload")
        if not isinstance(payload, dict):
            errors.append("'payload' is missing")
        else:
            summary = payload.get("summary")
            if not isinstance(summary, str) or not summary or len(summary) > 1024:
                errors.append("'payload.summary' is invalid")
            if not payload.get("source"):
                errors.append("'payload.source' is missing")
            if payload.get("severity") not in SEVERITIES:
                errors.append("'payload.severity' is invalid")
    if errors:
        return 400, {
            "status": "invalid event",
            "message": "Event object is invalid",
            "errors": errors,
        }
    key = key or uuid.uuid4().hex
    incident = world.incidents.setdefault(key, {"status": "resolved", "events": []})
    incident["events"].append(action)
    if action == "trigger" and incident["status"] == "resolved":
        incident["status"] = "triggered"
    elif action == "acknowledge" and incident["status"] == "triggered":
        incident["status"] = "acknowledged"
    elif action == "resolve":
        incident["status"] = "resolved"
    return 202, {"status": "success", "message": "Event processed", "dedup_key": key}


def _opsgenie(
    world: Providers, path: str, query: dict[str, list[str]], headers: Any, body: dict[str, Any]
) -> tuple[int, dict[str, Any]]:
    if headers.get("Authorization") != f"GenieKey {GENIE_KEY}":
        return 401, {"message": "Could not authenticate", "took": 0.0, "requestId": "x"}
    accepted = {"result": "Request will be processed", "took": 0.01, "requestId": str(uuid.uuid4())}
    if path == "/v2/alerts":
        message = body.get("message")
        alias = body.get("alias")
        if not isinstance(message, str) or not message or len(message) > 130:
            return 422, {"message": "Request body is not processable", "errors": {"message": "x"}}
        if alias is not None and len(alias) > 512:
            return 422, {"message": "Request body is not processable", "errors": {"alias": "x"}}
        alert = world.alerts.setdefault(alias, {"status": "closed", "events": [], "count": 0})
        if alert["status"] == "closed":
            alert["status"] = "open"
        alert["count"] += 1
        alert["events"].append("create")
        alert["priority"] = body.get("priority")
        alert["responders"] = body.get("responders")
        return 202, accepted
    parts = path.split("/")  # ["", "v2", "alerts", identifier, verb]
    if len(parts) != 5 or parts[4] not in ("acknowledge", "close"):
        return 404, {"message": "not found"}
    if query.get("identifierType") != ["alias"]:
        return 422, {"message": "identifierType must be alias here"}
    alias = unquote(parts[3])
    alert = world.alerts.get(alias)
    if alert is None:
        return 404, {"message": "Alert does not exist", "took": 0.0, "requestId": "x"}
    alert["events"].append(parts[4])
    alert["status"] = "acked" if parts[4] == "acknowledge" else "closed"
    alert["last_user"] = body.get("user")
    return 202, accepted


class _Handler(BaseHTTPRequestHandler):
    world: Providers

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""

    def do_POST(self) -> None:
        world = self.world
        split = urlsplit(self.path)
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        with world.lock:
            world.requests.append(("POST", split.path))
            if world.fail_next > 0:
                world.fail_next -= 1
                self._answer(500, {"status": "error", "message": "try again"})
                return
            status, answer = self._route(world, split.path, parse_qs(split.query), raw)
        self._answer(status, answer)

    def _route(
        self, world: Providers, path: str, query: dict[str, list[str]], raw: bytes
    ) -> tuple[int, Any]:
        if path.startswith("/2010-04-01/Accounts/"):
            return self._twilio(world, path, raw)
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            return 400, {"status": "invalid event", "message": "not JSON"}
        if path == "/v2/enqueue":
            return _pagerduty(world, body)
        if path.startswith("/v2/alerts"):
            return _opsgenie(world, path, query, self.headers, body)
        if path == "/api/chat.postMessage":
            if self.headers.get("Authorization") != f"Bearer {SLACK_TOKEN}":
                return 200, {"ok": False, "error": "invalid_auth"}
            if not body.get("channel") or not body.get("text"):
                return 200, {"ok": False, "error": "no_text"}
            world.slack.append(body)
            return 200, {"ok": True, "channel": body["channel"], "ts": f"{time.time():.6f}"}
        if path.startswith("/hooks/"):
            if not body.get("text"):
                return 400, "no_text"
            world.slack.append({"webhook": path, **body})
            return 200, "ok"
        return 404, {"message": "not found"}

    def _twilio(self, world: Providers, path: str, raw: bytes) -> tuple[int, Any]:
        expected = base64.b64encode(f"{TWILIO_SID}:{TWILIO_TOKEN}".encode()).decode()
        if self.headers.get("Authorization") != f"Basic {expected}":
            return 401, {"code": 20003, "message": "Authenticate", "status": 401}
        if path != f"/2010-04-01/Accounts/{TWILIO_SID}/Messages.json":
            return 404, {"code": 20404, "message": "not found", "status": 404}
        form = {key: values[0] for key, values in parse_qs(raw.decode()).items()}
        if not form.get("To"):
            return 400, {
                "code": 21604,
                "message": "A 'To' phone number is required.",
                "status": 400,
            }
        if not form.get("Body"):
            return 400, {"code": 21602, "message": "Message body is required.", "status": 400}
        world.texts.append(form)
        return 201, {"sid": "SM" + uuid.uuid4().hex, "status": "queued", **form}

    def _answer(self, status: int, answer: Any) -> None:
        data = answer.encode() if isinstance(answer, str) else json.dumps(answer).encode()
        self.send_response(status)
        self.send_header(
            "Content-Type", "text/plain" if isinstance(answer, str) else "application/json"
        )
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@contextmanager
def providers() -> Iterator[Providers]:
    """PagerDuty, Opsgenie, Twilio and Slack fakes on one free local port."""
    port = free_port()
    world = Providers(f"http://127.0.0.1:{port}")
    handler = type("Handler", (_Handler,), {"world": world})
    server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield world
    finally:
        server.shutdown()
        server.server_close()
