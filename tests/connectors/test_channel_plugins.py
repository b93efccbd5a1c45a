"""Channels as plugins: one settings class per external system, one registry, and a channel
added by one module, with every environment variable of before still read."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

import httpx
import pytest
from fastapi import APIRouter, FastAPI
from pydantic_settings import BaseSettings, SettingsConfigDict

from connectors.channels import ChannelPlugin, Inbound, MessageSink
from connectors.channels import registry as channel_registry
from connectors.channels.discourse import DiscourseSettings
from connectors.channels.registry import PLUGINS, inbound_routers, provider_settings, reply_senders
from connectors.channels.twilio import TwilioSettings
from connectors.outbound._model import Reply
from escalator.settings import ChannelSettings, KafkaSettings, OutboundSettings, Settings
from schemas import CHANNELS

SETTINGS_CLASSES: tuple[type[BaseSettings], ...] = (
    Settings,
    KafkaSettings,
    ChannelSettings,
    OutboundSettings,
    *(plugin.settings for plugin in PLUGINS),
)

NAMES_BEFORE_PLUGINS = (
    "ESCALATOR_DISCOURSE_API_USERNAME",
    "ESCALATOR_DISCOURSE_SECRET",
    "ESCALATOR_EMAIL_WEBHOOK_SECRET",
    "ESCALATOR_IMAP_FOLDER",
    "ESCALATOR_IMAP_HOST",
    "ESCALATOR_IMAP_PASSWORD",
    "ESCALATOR_IMAP_POLL_SECONDS",
    "ESCALATOR_IMAP_PORT",
    "ESCALATOR_IMAP_SSL",
    "ESCALATOR_IMAP_USERNAME",
    "ESCALATOR_MAIL_AUTH",
    "ESCALATOR_MAIL_DNS_SERVERS",
    "ESCALATOR_MAIL_TIMEOUT_SECONDS",
    "ESCALATOR_META_APP_SECRET",
    "ESCALATOR_META_VERIFY_TOKEN",
    "ESCALATOR_PUBLIC_URL",
    "ESCALATOR_SLACK_SIGNING_SECRET",
    "ESCALATOR_SMTP_DOMAINS",
    "ESCALATOR_SMTP_HOST",
    "ESCALATOR_SMTP_MAX_MESSAGE_BYTES",
    "ESCALATOR_SMTP_MAX_RECIPIENTS",
    "ESCALATOR_SMTP_PORT",
    "ESCALATOR_SMTP_REQUIRE_TLS",
    "ESCALATOR_SMTP_TLS_CERT",
    "ESCALATOR_SMTP_TLS_KEY",
    "ESCALATOR_TWILIO_AUTH_TOKEN",
    "ESCALATOR_WEBHOOK_SECRET",
    "ESCALATOR_WEBHOOK_TOLERANCE_SECONDS",
    "ESCALATOR_X_CONSUMER_SECRET",
    "ESCALATOR_DISCOURSE_API_KEY",
    "ESCALATOR_DISCOURSE_URL",
    "ESCALATOR_NOTIFY_EMAILS",
    "ESCALATOR_NOTIFY_FROM",
    "ESCALATOR_NOTIFY_SLACK_WEBHOOKS",
    "ESCALATOR_REPLIES_FROM_BEGINNING",
    "ESCALATOR_REPLIES_METRICS_PORT",
    "ESCALATOR_REPLY_ATTEMPTS",
    "ESCALATOR_REPLY_BACKOFF_SECONDS",
    "ESCALATOR_REPLY_DEDUP_ENTRIES",
    "ESCALATOR_REPLY_DEDUP_SECONDS",
    "ESCALATOR_REPLY_FROM",
    "ESCALATOR_REPLY_MAX_BACKOFF_SECONDS",
    "ESCALATOR_REPLY_WEBHOOK_SECRET",
    "ESCALATOR_REPLY_WEBHOOK_URL",
    "ESCALATOR_SLACK_API_URL",
    "ESCALATOR_SLACK_BOT_TOKEN",
    "ESCALATOR_SMTP_RELAY_HOST",
    "ESCALATOR_SMTP_RELAY_PASSWORD",
    "ESCALATOR_SMTP_RELAY_PORT",
    "ESCALATOR_SMTP_RELAY_STARTTLS",
    "ESCALATOR_SMTP_RELAY_USERNAME",
    "ESCALATOR_TWILIO_ACCOUNT_SID",
    "ESCALATOR_TWILIO_API_URL",
)
"""The variables the channel and outbound settings read before the plugins (a contract)."""


def declared_names(model: type[BaseSettings]) -> set[str]:
    """The environment variables a settings class reads (its alias, else prefix + field)."""
    prefix = str(model.model_config.get("env_prefix", ""))
    names: set[str] = set()
    for field_name, field in model.model_fields.items():
        alias = field.validation_alias
        names.add(alias.upper() if isinstance(alias, str) else f"{prefix}{field_name}".upper())
    return names


def test_every_variable_is_declared_by_exactly_one_settings_class() -> None:
    counts = Counter(name for model in SETTINGS_CLASSES for name in declared_names(model))
    twice = sorted(name for name, count in counts.items() if count > 1)
    assert twice == []  # e.g. ESCALATOR_TWILIO_AUTH_TOKEN was declared (and copied) twice
    assert set(NAMES_BEFORE_PLUGINS) <= set(counts), set(NAMES_BEFORE_PLUGINS) - set(counts)


def test_one_variable_serves_a_provider_in_and_out(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ESCALATOR_TWILIO_AUTH_TOKEN", "tok")
    monkeypatch.setenv("ESCALATOR_PUBLIC_URL", "https://help.example.com")
    monkeypatch.setenv("ESCALATOR_DISCOURSE_API_USERNAME", "support-bot")
    twilio = TwilioSettings()
    assert twilio.auth_token is not None and twilio.auth_token.get_secret_value() == "tok"
    assert twilio.public_url == "https://help.example.com"
    assert DiscourseSettings().api_username == "support-bot"  # the poster and the one ignored


def test_every_plugin_names_channels_of_the_table_and_owns_them_alone() -> None:
    owners = Counter(channel for plugin in PLUGINS for channel in plugin.channels)
    assert set(owners) <= set(CHANNELS)
    assert [channel for channel, count in owners.items() if count > 1] == []
    assert len({plugin.name for plugin in PLUGINS}) == len(PLUGINS)


# --- Adding a channel is one module: here, one in this test -----------------------------------


class PigeonSettings(BaseSettings):
    """A made-up provider's settings, as a new plugin module would declare them."""

    model_config = SettingsConfigDict(env_prefix="ESCALATOR_PIGEON_", extra="ignore")

    secret: str | None = None
    loft_url: str | None = None


class PigeonSender:
    def __init__(self, settings: PigeonSettings, client: httpx.Client) -> None:
        self.sent: list[Reply] = []

    def send(self, reply: Reply) -> None:
        self.sent.append(reply)


def pigeon_inbound(settings: PigeonSettings, context: Inbound) -> APIRouter | None:
    if settings.secret is None:
        return None
    api = APIRouter()

    @api.post("/v1/channels/pigeon")
    async def coo() -> dict[str, str]:
        return {"heard": settings.secret or ""}

    return api


PIGEON = ChannelPlugin(
    name="pigeon",
    channels=("pigeon",),
    settings=PigeonSettings,
    inbound=pigeon_inbound,
    outbound=PigeonSender,
)


def reply_on(channel: str) -> Reply:
    return Reply(
        case_id="C-AB2CD3EF4G",
        key="agent:p1",
        channel=channel,
        text="On its way.",
        recipient="loft-7",
        subject=None,
        thread_ref=None,
        in_reply_to=None,
        agent_id="agent-7",
        at=datetime(2026, 11, 20, 9, 0, tzinfo=UTC),
    )


async def test_a_plugin_listed_in_the_registry_gets_its_route_and_its_replies(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(channel_registry, "PLUGINS", (*PLUGINS, PIGEON))
    monkeypatch.setenv("ESCALATOR_PIGEON_SECRET", "coo")
    settings = provider_settings()
    sink = MessageSink(publisher=None, topic="unused")  # type: ignore[arg-type]
    routers = inbound_routers(settings, Inbound(sink, 1024))
    assert list(routers) == ["pigeon"]  # nothing else is configured
    app = FastAPI()
    app.include_router(routers["pigeon"])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://i") as h:
        assert (await h.post("/v1/channels/pigeon")).json() == {"heard": "coo"}
    with httpx.Client() as client:
        senders = reply_senders(settings, client)
        senders.send(reply_on("pigeon"))
        pigeon = senders.by_channel["pigeon"]
        assert isinstance(pigeon, PigeonSender) and [r.key for r in pigeon.sent] == ["agent:p1"]
