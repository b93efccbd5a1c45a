"""`make demo` makes an ingress key and prints a curl that works with it (and only with it)."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import httpx
import pytest

from escalator.connector_wiring import build_ingress_app
from escalator.demo.runner import demo_ingress_key, example_curl
from escalator.settings import ChannelSettings, KafkaSettings, Settings


async def test_the_printed_curl_posts_with_the_demo_key(
    tmp_path: Path, kafka_bootstrap: str, topic_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    keys_file = tmp_path / "ingress-keys.json"
    key = demo_ingress_key(keys_file)
    assert key not in keys_file.read_text()
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", kafka_bootstrap)
    monkeypatch.setenv("ESCALATOR_TOPIC_PREFIX", topic_prefix)
    monkeypatch.setenv("ESCALATOR_INGRESS_KEYS_FILE", str(keys_file))
    monkeypatch.delenv("ESCALATOR_INGRESS_AUTH", raising=False)
    words = shlex.split(example_curl("http://ingress", key))
    assert words[:3] == ["curl", "-sS", "http://ingress/v1/messages"]
    headers = dict(
        words[index + 1].split(": ", 1) for index, word in enumerate(words) if word == "-H"
    )
    body = json.loads(words[words.index("-d") + 1])
    app = build_ingress_app(Settings(), KafkaSettings(), ChannelSettings())
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://i") as http,
    ):
        answer = await http.post("/v1/messages", json=body, headers=headers)
        assert answer.status_code == 202, answer.text
        without = {k: v for k, v in headers.items() if k != "Authorization"}
        assert (await http.post("/v1/messages", json=body, headers=without)).status_code == 401
