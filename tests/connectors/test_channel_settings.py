"""Channel settings (ESCALATOR_*): half-configured channels refuse to start; unset ones are off."""

from __future__ import annotations

import logging
import smtplib
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
import trustme
from pydantic import ValidationError

from connectors.channels import ConfigurationError
from connectors.channels.registry import provider_settings
from connectors.channels.slack import SlackSettings
from connectors.channels.twilio import TwilioSettings
from connectors.email.plugin import EmailSettings
from escalator.connector_wiring import build_ingress_app, build_smtp_connector, mail_authenticator
from escalator.settings import ChannelSettings, KafkaSettings, OutboundSettings, Settings
from tests.connectors.test_email_servers import free_port


def test_half_configured_channels_refuse_to_start(
    monkeypatch: pytest.MonkeyPatch, kafka_bootstrap: str
) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", kafka_bootstrap)
    monkeypatch.setenv("ESCALATOR_TWILIO_AUTH_TOKEN", "t")
    with pytest.raises(ConfigurationError, match="ESCALATOR_PUBLIC_URL"):
        build_ingress_app(Settings(), KafkaSettings())
    assert TwilioSettings().auth_token is not None  # the replies process needs no public URL
    monkeypatch.delenv("ESCALATOR_TWILIO_AUTH_TOKEN")
    monkeypatch.setenv("ESCALATOR_META_APP_SECRET", "s")
    with pytest.raises(ConfigurationError, match="META_VERIFY_TOKEN"):
        build_ingress_app(Settings(), KafkaSettings())


def test_secrets_are_hidden_and_domains_split(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ESCALATOR_SLACK_SIGNING_SECRET", "very-secret")
    monkeypatch.setenv("ESCALATOR_SMTP_DOMAINS", "Acme.test, support.acme.test,")
    settings = provider_settings()
    assert "very-secret" not in repr(settings)
    email = EmailSettings()
    assert email.smtp_domain_list == ["acme.test", "support.acme.test"]
    slack = settings["slack"]
    assert isinstance(slack, SlackSettings) and slack.signing_secret is not None
    assert slack.signing_secret.get_secret_value() == "very-secret"


async def test_ingress_serves_only_configured_channels(
    monkeypatch: pytest.MonkeyPatch,
    kafka_bootstrap: str,
    topic_prefix: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", kafka_bootstrap)
    monkeypatch.setenv("ESCALATOR_TOPIC_PREFIX", topic_prefix)
    monkeypatch.setenv("ESCALATOR_DISCOURSE_SECRET", "d")
    with caplog.at_level(logging.INFO, logger="escalator.connector_wiring"):
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


def test_smtp_tls_and_mail_settings_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, kafka_bootstrap: str
) -> None:
    monkeypatch.setenv("ESCALATOR_SMTP_REQUIRE_TLS", "true")
    with pytest.raises(ValidationError, match="REQUIRE_TLS needs"):
        EmailSettings()
    monkeypatch.setenv("ESCALATOR_SMTP_TLS_CERT", str(tmp_path / "cert.pem"))
    with pytest.raises(ValidationError, match="SMTP_TLS_KEY"):
        EmailSettings()
    certificate = trustme.CA().issue_cert("localhost")
    certificate.cert_chain_pems[0].write_to_path(str(tmp_path / "cert.pem"))
    certificate.private_key_pem.write_to_path(str(tmp_path / "key.pem"))
    monkeypatch.setenv("ESCALATOR_SMTP_TLS_KEY", str(tmp_path / "key.pem"))
    monkeypatch.setenv("ESCALATOR_SMTP_DOMAINS", "acme.test")
    monkeypatch.setenv("ESCALATOR_SMTP_MAX_RECIPIENTS", "7")
    monkeypatch.setenv("ESCALATOR_MAIL_DNS_SERVERS", "192.0.2.53, 192.0.2.54")
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", kafka_bootstrap)
    channels = EmailSettings()
    assert mail_authenticator(channels) is not None
    connector, publisher = build_smtp_connector(KafkaSettings(), channels, port=free_port())
    connector.start()
    try:
        with smtplib.SMTP(*connector.address, timeout=30) as client:
            client.ehlo()
            assert client.has_extn("starttls")
            assert client.mail("ann@example.com")[0] == 530  # TLS is required
    finally:
        connector.stop()
        publisher.close()
    monkeypatch.setenv("ESCALATOR_MAIL_AUTH", "false")
    assert mail_authenticator(EmailSettings()) is None
