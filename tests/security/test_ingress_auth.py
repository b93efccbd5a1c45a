"""Attacks on `POST /v1/messages` and the ingress's metrics: no credential, a credential used
beyond its scope, fields that carry trust, unbounded metric labels, and a public `/metrics`.

The app is built as `escalator connect http` builds it (settings from the environment), and
keys are made with the operator's command, `escalator ingress keys`.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY

from escalator.connector_wiring import build_ingress_app
from escalator.demo import processes
from escalator.settings import ChannelSettings, KafkaSettings, Settings
from schemas import InboundMessage, Topics
from tests.kafka_support import consume_until
from tests.stack_support import escalator_stack

MESSAGE: dict[str, Any] = {
    "channel": "chat",
    "external_id": "chat-1",
    "sender": "visitor-1",
    "text": "Is anyone there?",
    "sent_at": "2026-11-20T09:30:00Z",
}


def keys_command(keys_file: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`escalator ingress keys ARGS --file KEYS_FILE`, as an operator runs it."""
    return subprocess.run(
        [sys.executable, "-m", "escalator", "ingress", "keys", *args, "--file", str(keys_file)],
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def new_key(keys_file: Path, name: str, *options: str) -> str:
    """Create a key with the command and return the token it printed once."""
    done = keys_command(keys_file, "add", name, *options)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
async def ingress(
    kafka_bootstrap: str, topic_prefix: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> AsyncIterator[tuple[httpx.AsyncClient, Path]]:
    """The ingress app with its keys file (empty until a test adds keys) and a client."""
    keys_file = tmp_path / "ingress-keys.json"
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", kafka_bootstrap)
    monkeypatch.setenv("ESCALATOR_TOPIC_PREFIX", topic_prefix)
    monkeypatch.setenv("ESCALATOR_INGRESS_KEYS_FILE", str(keys_file))
    monkeypatch.delenv("ESCALATOR_INGRESS_AUTH", raising=False)
    app = build_ingress_app(Settings(), KafkaSettings(), ChannelSettings())
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://i") as http,
    ):
        yield http, keys_file


async def test_no_credential_no_message(
    kafka_bootstrap: str, topic_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Out of the box (no setting at all) the ingress takes no anonymous message."""
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", kafka_bootstrap)
    monkeypatch.setenv("ESCALATOR_TOPIC_PREFIX", topic_prefix)
    for name in ("ESCALATOR_INGRESS_AUTH", "ESCALATOR_INGRESS_KEYS_FILE"):
        monkeypatch.delenv(name, raising=False)
    app = build_ingress_app(Settings(), KafkaSettings(), ChannelSettings())
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://i") as http,
    ):
        anonymous = await http.post("/v1/messages", json=MESSAGE)
        assert anonymous.status_code == 401, anonymous.text
        assert anonymous.headers["www-authenticate"].startswith("Bearer")
        guessed = await http.post("/v1/messages", json=MESSAGE, headers=bearer("eik_guess"))
        assert guessed.status_code == 401, guessed.text
        assert (await http.get("/healthz")).status_code == 200


async def test_a_key_publishes_only_to_its_channels(
    ingress: tuple[httpx.AsyncClient, Path], kafka_bootstrap: str, topics: Topics
) -> None:
    http, keys_file = ingress
    token = new_key(keys_file, "webchat", "--channels", "chat,webform")
    wrong = await http.post("/v1/messages", json=MESSAGE, headers=bearer(token + "x"))
    assert wrong.status_code == 401
    answer = await http.post("/v1/messages", json=MESSAGE, headers=bearer(token))
    assert answer.status_code == 202, answer.text
    [record] = consume_until(kafka_bootstrap, topics.inbound, 1)
    assert InboundMessage.model_validate_json(record.value or b"").external_id == "chat-1"
    email = {**MESSAGE, "channel": "email", "sender": "ceo@example.com"}
    batch = await http.post("/v1/messages", json=[MESSAGE, email], headers=bearer(token))
    assert batch.status_code == 403, batch.text
    assert batch.json()["detail"] == [
        {"index": 1, "field": "channel", "problem": "key 'webchat' may not publish to 'email'"}
    ]


TRUST_FIELDS: dict[str, dict[str, Any]] = {
    "customer.id": {"customer": {"id": "victim-42"}},
    "customer.verified": {"customer": {"email": "victim@example.com", "verified": ["email"]}},
    "metadata.staff": {"channel": "community", "metadata": {"staff": True}},
    "metadata.accepted_answer": {"channel": "community", "metadata": {"accepted_answer": True}},
    "metadata.escalation_request": {"metadata": {"escalation_request": True}},
}


@pytest.mark.parametrize("field", sorted(TRUST_FIELDS))
async def test_trust_fields_are_refused_from_a_key_not_scoped_to_set_them(
    ingress: tuple[httpx.AsyncClient, Path], field: str
) -> None:
    http, keys_file = ingress
    token = new_key(keys_file, "partner", "--channels", "*")
    forged = {**MESSAGE, **TRUST_FIELDS[field]}
    answer = await http.post("/v1/messages", json=forged, headers=bearer(token))
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"] == "untrusted_field"
    assert [problem["field"] for problem in answer.json()["detail"]] == [field]


async def test_a_key_scoped_to_a_trust_field_may_set_that_one_only(
    ingress: tuple[httpx.AsyncClient, Path], kafka_bootstrap: str, topics: Topics
) -> None:
    http, keys_file = ingress
    token = new_key(
        keys_file, "portal", "--channels", "chat", "--trust", "customer.id,customer.verified"
    )
    trusted = {
        **MESSAGE,
        "customer": {"id": "c-7", "email": "ann@example.com", "verified": ["email"]},
    }
    answer = await http.post("/v1/messages", json=trusted, headers=bearer(token))
    assert answer.status_code == 202, answer.text
    [record] = consume_until(kafka_bootstrap, topics.inbound, 1)
    assert InboundMessage.model_validate_json(record.value or b"").customer.id == "c-7"
    staff = {**trusted, "metadata": {"staff": True}}
    answer = await http.post("/v1/messages", json=staff, headers=bearer(token))
    assert answer.status_code == 422
    assert [problem["field"] for problem in answer.json()["detail"]] == ["metadata.staff"]
    unknown = keys_command(keys_file, "add", "typo", "--channels", "chat", "--trust", "cust.id")
    assert unknown.returncode != 0 and "cust.id" in unknown.stderr


async def test_revoked_and_rotated_keys_stop_working_without_a_restart(
    ingress: tuple[httpx.AsyncClient, Path],
) -> None:
    http, keys_file = ingress
    token = new_key(keys_file, "kiosk", "--channels", "chat")
    assert (await http.post("/v1/messages", json=MESSAGE, headers=bearer(token))).status_code == 202
    rotated = keys_command(keys_file, "rotate", "kiosk")
    assert rotated.returncode == 0, rotated.stderr
    fresh = rotated.stdout.strip()
    assert fresh and fresh != token
    old = await http.post("/v1/messages", json=MESSAGE, headers=bearer(token))
    assert old.status_code == 401
    assert (await http.post("/v1/messages", json=MESSAGE, headers=bearer(fresh))).status_code == 202
    revoked = keys_command(keys_file, "revoke", "kiosk")
    assert revoked.returncode == 0, revoked.stderr
    gone = await http.post("/v1/messages", json=MESSAGE, headers=bearer(fresh))
    assert gone.status_code == 401
    listing = keys_command(keys_file, "list", "--json")
    [kiosk] = json.loads(listing.stdout)
    assert kiosk["name"] == "kiosk" and kiosk["revoked_at"]


def test_the_keys_file_holds_hashes_never_tokens(tmp_path: Path) -> None:
    keys_file = tmp_path / "keys.json"
    token = new_key(keys_file, "webchat", "--channels", "chat")
    assert token.startswith("eik_") and len(token) > 40
    stored = keys_file.read_text()
    assert token not in stored
    assert hashlib.sha256(token.encode()).hexdigest() in stored
    assert keys_command(keys_file, "add", "webchat", "--channels", "chat").returncode != 0


async def test_the_channel_label_cannot_be_minted_by_callers(
    ingress: tuple[httpx.AsyncClient, Path],
) -> None:
    http, keys_file = ingress
    token = new_key(keys_file, "any", "--channels", "*")
    minted = [f"zz-minted-{index}" for index in range(3)]
    for index, channel in enumerate(minted):
        message = {**MESSAGE, "channel": channel, "external_id": f"m-{index}"}
        answer = await http.post("/v1/messages", json=message, headers=bearer(token))
        assert answer.status_code == 202, answer.text
    labels = {
        sample.labels["channel"]
        for metric in REGISTRY.collect()
        if metric.name == "escalator_ingress_messages_accepted"
        for sample in metric.samples
    }
    assert not labels & set(minted)
    assert "other" in labels


def test_the_ingress_process_keeps_metrics_off_its_public_port(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    """`escalator connect http` with `/metrics` on its own address, and auth explicitly off."""
    port, metrics_port = processes.free_port(), processes.free_port()
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "ESCALATOR_TOPIC_PREFIX": topic_prefix,
        "ESCALATOR_INGRESS_AUTH": "none",
        "ESCALATOR_INGRESS_METRICS_PORT": str(metrics_port),
    }
    ingress = processes.start("ingress", ["connect", "http", "--port", str(port)], env, tmp_path)
    try:
        processes.wait_until_ready(f"http://127.0.0.1:{port}/healthz", ingress)
        public = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10)
        assert public.status_code == 404
        private = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10)
        assert private.status_code == 200
        assert "escalator_ingress_messages_rejected" in private.text
        answer = httpx.post(f"http://127.0.0.1:{port}/v1/messages", json=MESSAGE, timeout=30)
        assert answer.status_code == 202, answer.text
    finally:
        ingress.stop()
    log = ingress.log_path.read_text()
    assert "ESCALATOR_INGRESS_AUTH=none" in log and "WARNING" in log


def test_a_key_holder_cannot_mint_channel_labels_in_the_worker_either(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    """The deployed processes: an ingress with a keys file, a worker behind it."""
    keys_file = tmp_path / "ingress-keys.json"
    token = new_key(keys_file, "partner", "--channels", "*")
    with escalator_stack(
        kafka_bootstrap,
        topic_prefix,
        tmp_path,
        ESCALATOR_INGRESS_AUTH="keys",
        ESCALATOR_INGRESS_KEYS_FILE=str(keys_file),
    ) as stack:
        stack.start_worker()
        stack.start_ingress()
        anonymous = httpx.post(f"{stack.ingress_url}/v1/messages", json=MESSAGE, timeout=30)
        assert anonymous.status_code == 401
        minted = {**MESSAGE, "channel": "zz-minted-worker", "external_id": "w-1"}
        answer = httpx.post(
            f"{stack.ingress_url}/v1/messages", json=minted, headers=bearer(token), timeout=30
        )
        assert answer.status_code == 202, answer.text
        consume_until(kafka_bootstrap, Topics(topic_prefix).queue("general"), 1, timeout=90)
        exposition = httpx.get(f"{stack.worker_url}/metrics", timeout=10).text
        ingested = [line for line in exposition.splitlines() if "messages_ingested_total{" in line]
        assert ingested, exposition[:2000]
        assert "zz-minted-worker" not in exposition
        assert any('channel="other"' in line for line in ingested)


PUBLIC_WITHOUT_CREDENTIALS = {
    "/healthz",
    "/readyz",
    "/openapi.json",  # the schema of the API, as the desk publishes its own; no data
    "/docs",
    "/docs/oauth2-redirect",
    "/redoc",
}


def every_route(routes: list[Any]) -> Iterator[tuple[str, str]]:
    """(method, path) of every route, also inside included routers (FastAPI keeps those
    apart as `_IncludedRouter`, with the router as `original_router`)."""
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is not None:
            yield from every_route(included.routes)
        for method in getattr(route, "methods", None) or ():
            if method != "HEAD":
                yield method, route.path


async def test_no_route_of_the_ingress_gives_anything_to_a_stranger(
    kafka_bootstrap: str, topic_prefix: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Every route of the ingress as deployed (every channel on, keys, metrics on their own
    port), called with no credential and no signature: only health and the API's own
    description answer 2xx."""
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", kafka_bootstrap)
    monkeypatch.setenv("ESCALATOR_TOPIC_PREFIX", topic_prefix)
    monkeypatch.setenv("ESCALATOR_INGRESS_KEYS_FILE", str(tmp_path / "keys.json"))
    monkeypatch.setenv("ESCALATOR_INGRESS_METRICS_PORT", "9468")
    monkeypatch.delenv("ESCALATOR_INGRESS_AUTH", raising=False)
    new_key(tmp_path / "keys.json", "someone", "--channels", "*")
    secrets = {
        "TWILIO_AUTH_TOKEN": "t",
        "PUBLIC_URL": "https://help.example.com",
        "SLACK_SIGNING_SECRET": "s",
        "META_APP_SECRET": "m",
        "META_VERIFY_TOKEN": "v",
        "X_CONSUMER_SECRET": "x",
        "DISCOURSE_SECRET": "d",
        "WEBHOOK_SECRET": "w",
        "EMAIL_WEBHOOK_SECRET": "e",
    }
    for name, value in secrets.items():
        monkeypatch.setenv(f"ESCALATOR_{name}", value)
    app = build_ingress_app(Settings(), KafkaSettings(), ChannelSettings())
    described = {
        (method.upper(), path)
        for path, operations in app.openapi()["paths"].items()
        for method in operations
    }
    routes = sorted(set(every_route(app.routes)) | described)
    for channel_route in [
        ("POST", "/v1/channels/email/inbound"),
        ("POST", "/v1/channels/slack/events"),
        ("GET", "/v1/channels/x"),
        ("GET", "/v1/channels/meta"),
        ("POST", "/v1/channels/twilio"),
        ("POST", "/v1/channels/discourse"),
        ("POST", "/v1/channels/webhook"),
    ]:
        assert channel_route in routes  # every channel is mounted and walked
    assert "/metrics" not in {path for _method, path in routes}
    answers: dict[tuple[str, str], int] = {}
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://i") as http,
    ):
        for method, path in routes:
            body = json.dumps(MESSAGE) if method == "POST" else None
            answer = await http.request(
                method, path, content=body, headers={"content-type": "application/json"}
            )
            answers[(method, path)] = answer.status_code
    opened = {route: status for route, status in answers.items() if status < 300}
    assert {path for _method, path in opened} <= PUBLIC_WITHOUT_CREDENTIALS, answers
    assert answers[("POST", "/v1/messages")] == 401
