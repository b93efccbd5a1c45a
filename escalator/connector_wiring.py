"""The composition root of the connector processes: ingress, mail servers, reply service."""

from __future__ import annotations

import logging
import ssl
from typing import TypeVar

import httpx
from fastapi import FastAPI
from pydantic_settings import BaseSettings

from connectors.channels import (
    DeliveryMemory,
    Inbound,
    MessageSink,
    ReplayCache,
    SharedReplayCache,
)
from connectors.channels.registry import (
    ProviderSettings,
    inbound_routers,
    provider_settings,
    reply_senders,
)
from connectors.channels.slack import SlackSettings
from connectors.channels.twilio import TwilioSettings
from connectors.email.imap import ImapConfig, ImapPoller
from connectors.email.plugin import EmailSettings, mail_authenticator
from connectors.email.smtp import SmtpConnector, server_tls_context
from connectors.email.workers import MailWorkers
from connectors.escalate_page import escalate_router
from connectors.http_ingress import create_app
from connectors.ingress_auth import IngressAuth
from connectors.outbound.ledger import LedgerBounds
from connectors.outbound.notify import Notifier, NotifyConfig
from connectors.outbound.pagers import PagerConfig, Pagers
from connectors.outbound.service import DeliveryService, RetryPolicy
from connectors.publisher import KafkaPublisher
from escalator.settings import ChannelSettings, KafkaSettings, OutboundSettings, Settings
from escalator.topic_admin import ensure_topics
from escalator.wiring import escalation_links, secret_value

log = logging.getLogger(__name__)


def build_ingress_app(
    settings: Settings,
    kafka: KafkaSettings,
    channels: ChannelSettings | None = None,
    providers: ProviderSettings | None = None,
) -> FastAPI:
    """The ASGI app of `escalator connect http`: `/v1/messages` and every configured channel.

    `providers` are the channel plugins' settings (default: read from `ESCALATOR_*`); a
    provider configured by half raises ConfigurationError, so the ingress refuses to start.
    """
    try:
        ensure_topics(kafka, {kafka.topics.inbound: {}}, timeout_seconds=5.0)
    except Exception as exc:  # the ingress must start (and answer 503) while Kafka is down
        log.warning("could not check topics at start: %s", exc)
    auth = ingress_auth(settings)
    publisher = KafkaPublisher(kafka.librdkafka())
    replays: DeliveryMemory = (
        ReplayCache(settings.webhook_replay_cache_size, settings.webhook_replay_window_seconds)
        if settings.webhook_replay_store is None
        else SharedReplayCache(
            settings.webhook_replay_store,
            settings.webhook_replay_cache_size,
            settings.webhook_replay_window_seconds,
        )
    )
    routers = inbound_routers(
        providers if providers is not None else provider_settings(),
        Inbound(
            MessageSink(publisher, kafka.topics.inbound, replays),
            settings.max_body_bytes,
            (channels or ChannelSettings()).webhook_tolerance_seconds,
        ),
    )
    log.info("channels on: %s", ", ".join(routers) or "none (set their secrets to serve them)")
    links = escalation_links(settings, for_ingress=True)
    if links is not None:  # the customers' "still not solved?" page
        store = settings.webhook_replay_store  # shared by the ingress's processes, if several
        used = (
            None
            if store is None
            else SharedReplayCache(
                store.with_name(f"{store.stem}-escalation-links.db"),
                max_age_seconds=links.lifetime.total_seconds(),
            )
        )
        routers["escalate"] = escalate_router(
            links, MessageSink(publisher, kafka.topics.inbound, replays), used
        )
    return create_app(
        publisher,
        kafka.topics,
        settings.max_body_bytes,
        list(routers.values()),
        auth=auth,
        serve_metrics=settings.ingress_metrics_port is None,
    )


def ingress_auth(settings: Settings) -> IngressAuth:
    """Who may call `POST /v1/messages`, from ESCALATOR_INGRESS_AUTH and _KEYS_FILE."""
    if settings.ingress_auth == "none":
        log.warning(
            "ESCALATOR_INGRESS_AUTH=none: POST /v1/messages takes messages from anyone and "
            "believes their customer ids, verified handles and staff answers; never expose it"
        )
        return IngressAuth.without_keys()
    if settings.ingress_keys_file is None:
        log.warning(
            "no ESCALATOR_INGRESS_KEYS_FILE: POST /v1/messages refuses every request (401); "
            "create keys with `escalator ingress keys add`"
        )
    return IngressAuth.from_keys_file(settings.ingress_keys_file)


def build_smtp_connector(
    kafka: KafkaSettings, channels: EmailSettings, port: int | None = None
) -> tuple[SmtpConnector, KafkaPublisher]:
    """The SMTP server of `escalator connect smtp` and its publisher (close it after stopping)."""
    try:
        ensure_topics(kafka, {kafka.topics.inbound: {}}, timeout_seconds=5.0)
    except Exception as exc:  # start anyway: while Kafka is down, mail gets 451 and is retried
        log.warning("could not check topics at start: %s", exc)
    publisher = KafkaPublisher(kafka.librdkafka())
    connector = SmtpConnector(
        channels.smtp_domain_list,
        MessageSink(publisher, kafka.topics.inbound),
        host=channels.smtp_host,
        port=port or channels.smtp_port,
        max_message_bytes=channels.smtp_max_message_bytes,
        max_recipients=channels.smtp_max_recipients,
        tls_context=_smtp_tls_context(channels),
        require_tls=channels.smtp_require_tls,
        workers=MailWorkers(timeout_seconds=channels.mail_timeout_seconds),
        authenticator=mail_authenticator(channels),
    )
    return connector, publisher


def _smtp_tls_context(channels: EmailSettings) -> ssl.SSLContext | None:
    """The STARTTLS context from ESCALATOR_SMTP_TLS_CERT/_KEY, or None without them."""
    if channels.smtp_tls_cert is None or channels.smtp_tls_key is None:
        return None
    return server_tls_context(str(channels.smtp_tls_cert), str(channels.smtp_tls_key))


def build_imap_poller(
    kafka: KafkaSettings, channels: EmailSettings
) -> tuple[ImapPoller, KafkaPublisher]:
    """The mailbox poller of `escalator connect imap` and its publisher."""
    if not (channels.imap_host and channels.imap_username and channels.imap_password):
        raise ValueError(
            "set ESCALATOR_IMAP_HOST, ESCALATOR_IMAP_USERNAME, ESCALATOR_IMAP_PASSWORD"
        )
    publisher = KafkaPublisher(kafka.librdkafka())
    config = ImapConfig(
        host=channels.imap_host,
        username=channels.imap_username,
        password=channels.imap_password.get_secret_value(),
        port=channels.imap_port,
        use_ssl=channels.imap_ssl,
        folder=channels.imap_folder,
        poll_seconds=channels.imap_poll_seconds,
    )
    poller = ImapPoller(
        config,
        MessageSink(publisher, kafka.topics.inbound),
        authenticator=mail_authenticator(channels),
        workers=MailWorkers(
            threads=1, max_in_flight=1, timeout_seconds=channels.mail_timeout_seconds
        ),
    )
    return poller, publisher


_SettingsT = TypeVar("_SettingsT", bound=BaseSettings)


def _plugin_settings(providers: ProviderSettings, name: str, kind: type[_SettingsT]) -> _SettingsT:
    """One channel plugin's settings, as the type that plugin declares."""
    found = providers[name]
    if not isinstance(found, kind):
        raise TypeError(f"the {name} plugin's settings are {type(found).__name__}")
    return found


def build_delivery_service(
    kafka: KafkaSettings,
    outbound: OutboundSettings,
    client: httpx.Client,
    providers: ProviderSettings | None = None,
) -> DeliveryService:
    """The reply and notification consumer of `escalator connect replies`.

    `providers` are the channel plugins' settings (default: read from `ESCALATOR_*`).
    """
    providers = providers if providers is not None else provider_settings()
    email = _plugin_settings(providers, "email", EmailSettings)
    twilio = _plugin_settings(providers, "twilio", TwilioSettings)
    slack = _plugin_settings(providers, "slack", SlackSettings)
    notify = NotifyConfig(
        slack_webhooks=dict(outbound.notify_slack_webhooks),
        emails={target: list(addresses) for target, addresses in outbound.notify_emails.items()},
        mail_from=outbound.notify_from or email.reply_from,
        smtp=email.relay,
    )
    retention_ms = str(int(outbound.reply_dedup_seconds * 1000))
    ensure_topics(
        kafka,
        {
            kafka.topics.case_events: {"retention.ms": "-1"},
            kafka.topics.dlq: {},
            kafka.topics.reply_deliveries: {
                "cleanup.policy": "compact,delete",
                "retention.ms": retention_ms,
            },
        },
    )
    return DeliveryService(
        kafka.librdkafka(),
        kafka.topics,
        reply_senders(providers, client),
        Notifier(notify, client),
        RetryPolicy(
            attempts=outbound.reply_attempts,
            first_backoff_seconds=outbound.reply_backoff_seconds,
            max_backoff_seconds=outbound.reply_max_backoff_seconds,
        ),
        from_beginning=outbound.replies_from_beginning,
        acknowledgement_window_seconds=outbound.acknowledgement_window_seconds,
        ledger_bounds=LedgerBounds(
            max_entries=outbound.reply_dedup_entries,
            max_age_seconds=outbound.reply_dedup_seconds,
        ),
        pagers=Pagers(
            PagerConfig(
                keys={name: key.get_secret_value() for name, key in outbound.pager_keys.items()},
                pagerduty_events_url=outbound.pagerduty_events_url,
                opsgenie_api_url=outbound.opsgenie_api_url,
                twilio_account_sid=twilio.account_sid,
                twilio_auth_token=secret_value(twilio.auth_token),
                twilio_api_url=twilio.api_url,
                sms_from=outbound.pager_sms_from,
                slack_bot_token=secret_value(slack.bot_token),
                slack_api_url=slack.api_url,
                smtp=email.relay,
                mail_from=outbound.notify_from or email.reply_from,
                console_url=outbound.console_url,
            ),
            client,
        ),
    )
