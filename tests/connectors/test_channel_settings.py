"""Channel settings (ESCALATOR_*): half-configured channels refuse to start; unset ones are off."""

from __future__ import annotations

import logging
from datetime import timedelta

import httpx
import pytest
from pydantic import ValidationError

from escalator.settings import ChannelSettings, KafkaSettings, OutboundSettings, Settings
from escalator.wiring import build_ingress_app, channel_config


def test_half_configured_channels_refuse_to_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ESCALATOR_TWILIO_AUTH_TOKEN", "t")
    with pytest.raises(ValidationError, match="ESCALATOR_PUBLIC_URL"):
        ChannelSettings()
    monkeypatch.delenv("ESCALATOR_TWILIO_AUTH_TOKEN")
    monkeypatch.setenv("ESCALATOR_META_APP_SECRET", "s")
    with pytest.raises(ValidationError, match="META_VERIFY_TOKEN"):
        ChannelSettings()


def test_secrets_are_hidden_and_domains_split(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ESCALATOR_SLACK_SIGNING_SECRET", "very-secret")
    monkeypatch.setenv("ESCALATOR_SMTP_DOMAINS", "Acme.test, support.acme.test,")
    channels = ChannelSettings()
    assert "very-secret" not in repr(channels)
    assert channels.smtp_domain_list == ["acme.test", "support.acme.test"]
    assert channel_config(channels).slack_signing_secret == "very-secret"


async def test_ingress_serves_only_configured_channels(
    monkeypatch: pytest.MonkeyPatch,
    kafka_bootstrap: str,
    topic_prefix: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", kafka_bootstrap)
    monkeypatch.setenv("ESCALATOR_TOPIC_PREFIX", topic_prefix)
    monkeypatch.setenv("ESCALATOR_DISCOURSE_SECRET", "d")
    with caplog.at_level(logging.INFO, logger="escalator.wiring"):
        app = build_ingress_app(Settings(), KafkaSettings(), ChannelSettings())
    assert "channels on: discourse" in caplog.text
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://i") as http:
        assert (await http.post("/v1/channels/discourse", content=b"{}")).status_code == 401
        assert (await http.post("/v1/channels/twilio", content=b"")).status_code == 404
        assert (await http.get("/healthz")).status_code == 200


def test_identity_threading_and_outbound_settings_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ESCALATOR_THREAD_WINDOW", "P3D")
    monkeypatch.setenv("ESCALATOR_REOPEN_WINDOW", "3600")
    monkeypatch.setenv("ESCALATOR_HISTORY_WINDOW", "P14D")
    monkeypatch.setenv("ESCALATOR_VERIFIED_CHANNELS", "chat, WebForm,")
    monkeypatch.setenv("ESCALATOR_NOTIFY_SLACK_WEBHOOKS", '{"team-leads": "https://hooks.test/x"}')
    monkeypatch.setenv("ESCALATOR_NOTIFY_EMAILS", '{"team-leads": ["lead@acme.test"]}')
    settings = Settings()
    assert settings.thread_window == timedelta(days=3)
    assert settings.reopen_window == timedelta(hours=1)
    assert settings.history_window == timedelta(days=14)
    assert settings.verified_channel_set == frozenset({"chat", "webform"})
    outbound = OutboundSettings()
    assert outbound.notify_slack_webhooks == {"team-leads": "https://hooks.test/x"}
    assert outbound.notify_emails == {"team-leads": ["lead@acme.test"]}
    assert outbound.reply_attempts == 6
