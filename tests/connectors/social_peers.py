"""Local stand-ins for the Meta Graph API and the X API v2, answering as their docs say.

Each implements the documented request/response contract of the endpoints Escalator calls,
checks what those docs require (the token, the fields, their shapes) and answers errors in
the provider's own format. `throttle` scripts rate limits for the next calls.

- Graph API (developers.facebook.com, Send API reference and IG comment replies):
  `POST /{version}/me/messages` (form or JSON: `recipient={"id"}`, `messaging_type`,
  `message={"text"}`, `access_token`) → `{"recipient_id", "message_id"}`;
  `POST /{version}/{ig-comment-id}/replies` and `POST /{version}/{object-id}/comments`
  (`message`) → `{"id"}`; `POST /{version}/{ig-user-id}/mentions` (`media_id`, optional
  `comment_id`, `message`) → `{"id"}`; errors `{"error": {"message", "type", "code",
  "fbtrace_id"}}`, rate limits as code 4/17/32/613 (HTTP 400) or HTTP 429.
- X API v2 (docs.x.com): `POST /2/dm_conversations/with/{participant_id}/messages`
  (`{"text"}`) → 201 `{"data": {"dm_conversation_id", "dm_event_id"}}`; `POST /2/tweets`
  (`{"text", "reply": {"in_reply_to_tweet_id"}}`) → 201 `{"data": {"id", "text"}}`; errors as
  problem JSON (`title`, `detail`, `type`, `status`); 429 with `x-rate-limit-*` headers.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs

from escalator.demo.processes import free_port
from tests.connectors.peers import Call, serve_http

Answer = tuple[int, dict[str, str], dict[str, Any]]


@dataclass
class Provider:
    """A running stand-in: its URL, the calls it received and what it accepted."""

    url: str
    token: str
    calls: list[Call] = field(default_factory=list)
    accepted: list[dict[str, Any]] = field(default_factory=list)
    throttle: list[Answer | Callable[[], Answer]] = field(default_factory=list)
    """Answers for the next calls, before any checking (rate limits, outages); a callable is
    asked at the time of the call (for headers that name a moment)."""
    call_times: list[float] = field(default_factory=list)

    def wait_for_accepted(self, count: int, timeout: float = 30.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while len(self.accepted) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return list(self.accepted)


def graph_error(status: int, code: int, message: str, kind: str = "OAuthException") -> Answer:
    """A Graph API error answer."""
    error = {"message": message, "type": kind, "code": code, "fbtrace_id": "AbCdEf123"}
    return status, {}, {"error": error}


def x_problem(status: int, title: str, detail: str) -> Answer:
    """An X API v2 problem answer."""
    return status, {}, {"title": title, "detail": detail, "type": "about:blank", "status": status}


def _form_or_json(headers: dict[str, str], body: bytes) -> dict[str, Any]:
    if headers.get("content-type", "").startswith("application/json"):
        document = json.loads(body or b"{}")
        return document if isinstance(document, dict) else {}
    return {key: values[0] for key, values in parse_qs(body.decode()).items()}


def _object(value: Any) -> dict[str, Any] | None:
    if isinstance(value, dict):
        return value
    try:
        parsed = json.loads(value)
    except (TypeError, ValueError):
        return None
    return parsed if isinstance(parsed, dict) else None


class Graph:
    """The Graph API endpoints Escalator calls, for one Page access token."""

    def __init__(self, token: str, version: str = "v25.0") -> None:
        self.token = token
        self.version = version
        self.known_users = {"psid-1", "igsid-1"}

    def answer(self, path: str, headers: dict[str, str], body: bytes) -> tuple[Answer, Any]:
        params = _form_or_json(headers, body)
        bearer = headers.get("authorization", "").removeprefix("Bearer ")
        if params.get("access_token", bearer) != self.token:
            return graph_error(
                400, 190, "Invalid OAuth access token - Cannot parse access token"
            ), None
        match = re.fullmatch(rf"/{self.version}/([^/]+)/(messages|replies|comments|mentions)", path)
        if match is None:
            return graph_error(400, 100, "Unknown path components", "GraphMethodException"), None
        node, edge = match.groups()
        if edge == "messages":
            recipient = _object(params.get("recipient"))
            message = _object(params.get("message"))
            if node != "me" and not node.isdigit():
                return graph_error(400, 100, "(#100) Invalid page id"), None
            if params.get("messaging_type") not in ("RESPONSE", "UPDATE", "MESSAGE_TAG"):
                return graph_error(400, 100, "(#100) param messaging_type is required"), None
            if recipient is None or message is None or not message.get("text"):
                return graph_error(400, 100, "(#100) param recipient and message required"), None
            if recipient.get("id") not in self.known_users:
                return graph_error(400, 100, "(#100) No matching user found"), None
            reply = {"recipient_id": recipient["id"], "message_id": f"m_{len(body)}"}
            return (200, {}, reply), {"edge": "messages", "to": recipient["id"], **message}
        if not params.get("message"):
            return graph_error(400, 100, "(#100) The parameter message is required"), None
        created = {"edge": edge, "on": node, "text": params["message"]}
        if edge == "mentions":  # POST /{ig-user-id}/mentions: media_id, optional comment_id
            if not node.isdigit() or not str(params.get("media_id", "")).isdigit():
                return graph_error(400, 100, "(#100) The parameter media_id is required"), None
            created["media_id"] = params["media_id"]
            if "comment_id" in params:
                created["comment_id"] = params["comment_id"]
        return (200, {}, {"id": f"1787{len(body)}"}), created


class XApi:
    """The X API v2 endpoints Escalator calls, for one user-context token."""

    def __init__(self, token: str) -> None:
        self.token = token
        self.tweets: set[str] = set()

    def answer(self, path: str, headers: dict[str, str], body: bytes) -> tuple[Answer, Any]:
        if headers.get("authorization") != f"Bearer {self.token}":
            return x_problem(401, "Unauthorized", "Unauthorized"), None
        if not headers.get("content-type", "").startswith("application/json"):
            return x_problem(400, "Invalid Request", "the body must be JSON"), None
        document = json.loads(body or b"{}")
        text = document.get("text")
        dm = re.fullmatch(r"/2/dm_conversations/with/([0-9]+)/messages", path)
        if dm is not None:
            if not isinstance(text, str) or not text:
                return x_problem(400, "Invalid Request", "text or attachments required"), None
            data = {"dm_conversation_id": f"1-{dm.group(1)}", "dm_event_id": "1582"}
            return (201, {}, {"data": data}), {"dm_to": dm.group(1), "text": text}
        if path != "/2/tweets":
            return x_problem(404, "Not Found Error", f"no route {path}"), None
        reply_to = (document.get("reply") or {}).get("in_reply_to_tweet_id")
        if not isinstance(text, str) or text in self.tweets:
            detail = "You are not allowed to create a Tweet with duplicate content."
            return x_problem(403, "Forbidden", detail), None
        self.tweets.add(text)
        data = {"id": "1445880548472328192", "text": text}
        return (201, {}, {"data": data}), {"in_reply_to": reply_to, "text": text}


@contextmanager
def serving(api: Graph | XApi) -> Iterator[Provider]:
    """The stand-in on a free local port, in a thread."""
    port = free_port()
    provider = Provider(url=f"http://127.0.0.1:{port}", token=api.token)
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length)
            headers = {k.lower(): v for k, v in self.headers.items()}
            path = self.path.partition("?")[0]
            with lock:
                provider.calls.append(Call("POST", self.path, headers, body))
                provider.call_times.append(time.monotonic())
                scripted = provider.throttle.pop(0) if provider.throttle else None
            if scripted is not None:
                answer = scripted() if callable(scripted) else scripted
                (status, extra, document), created = answer, None
            else:
                (status, extra, document), created = api.answer(path, headers, body)
            if created is not None:
                provider.accepted.append(created)
            payload = json.dumps(document).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            for name, value in extra.items():
                self.send_header(name, value)
            self.send_header("content-length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            return

    with serve_http(port, Handler):
        yield provider
