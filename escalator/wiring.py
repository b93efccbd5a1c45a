"""Wiring: builds each process's objects from settings. The only place that knows them all."""

from __future__ import annotations

import logging
import ssl
from pathlib import Path
from typing import Any, TypeVar

import faust
import httpx
from fastapi import FastAPI
from prometheus_client import REGISTRY
from pydantic import SecretStr
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
from escalator.observability.kafka_lag import KafkaLagCollector, WatchedGroup
from escalator.rulefiles import read_referenced_file, read_rule_sources
from escalator.settings import ChannelSettings, KafkaSettings, OutboundSettings, Settings
from escalator.topic_admin import core_topics, ensure_topics
from kafkaio import AsyncProducer
from kafkaio.admin import Replication, create_missing_topics
from kafkaio.faust_config import (
    faust_broker_url,
    faust_internal_topics,
    faust_replication,
    faust_security,
)
from rules import CompiledRuleSet, compile_sources, default_ruleset
from schemas.links import EscalationLinks
from streams.app import build_app
from streams.identity import IdentityDirectory
from streams.identity_watch import IdentityWatcher
from streams.poison import ThreadDeadLetters
from streams.rules_watch import RulesWatcher
from streams.shadow_watch import ShadowWatcher
from streams.threader import ThreadingPolicy
from streams.worker_config import RuleSetHolder, WorkerConfig

log = logging.getLogger(__name__)


def load_rules(settings: Settings) -> CompiledRuleSet:
    """The rule set named by `ESCALATOR_RULES`, or the built-in default."""
    if settings.rules is None:
        return default_ruleset()
    return compile_sources(read_rule_sources(settings.rules), read_file=read_referenced_file)


def worker_config(
    settings: Settings,
    kafka: KafkaSettings,
    data_dir: Path,
    extra_faust: dict[str, Any] | None,
    replication: Replication | None = None,
) -> WorkerConfig:
    """The worker's configuration from the settings (topics, ports, SLA timer, faust).

    With `replication`, the topics faust creates itself are replicated like ours.
    """
    return WorkerConfig(
        broker_url=faust_broker_url(kafka),
        topics=kafka.topics,
        partitions=kafka.partitions,
        app_id=f"{kafka.topic_prefix}worker",
        web_port=settings.worker_web_port,
        web_host=settings.worker_web_host,
        data_dir=str(data_dir),
        connection=kafka.librdkafka(),
        sla_lateness_seconds=settings.sla_lateness_seconds,
        sla_prepare_seconds=settings.sla_prepare_seconds,
        sla_prepare_limit=settings.sla_prepare_limit,
        stall_seconds=settings.stall_seconds,
        max_record_bytes=settings.max_record_bytes,
        fetch_max_wait_ms=_embedded_broker_fetch_wait(settings),
        escalate_links=escalation_links(settings),
        faust_settings={
            **faust_security(kafka),
            **(faust_replication(replication) if replication else {}),
            **_embedded_broker_tuning(settings),
            **(extra_faust or {}),
        },
    )


def build_worker_app(
    settings: Settings, kafka: KafkaSettings, extra_faust: dict[str, Any] | None = None
) -> faust.App:
    """The faust app of `escalator worker`, with its topics created and rules loaded."""
    ensure_topics(kafka, core_topics(kafka, ()))
    publisher = AsyncProducer(kafka.librdkafka(), delivery_timeout_seconds=30.0)
    holder, watcher = _rules_with_hot_reload(settings, kafka, publisher)
    replication = ensure_topics(kafka, core_topics(kafka, holder.current.queues.keys()))
    data_dir = settings.data_dir / "worker"
    data_dir.mkdir(parents=True, exist_ok=True)
    config = worker_config(settings, kafka, data_dir, extra_faust, replication)
    create_missing_topics(
        kafka.librdkafka(), faust_internal_topics(config.app_id), replication.factor
    )
    identity = _identity_directory(settings, kafka, publisher)
    threading = ThreadingPolicy(
        thread_window=settings.thread_window,
        reopen_window=settings.reopen_window,
        history_window=settings.history_window,
    )
    app = build_app(config, holder, publisher, identity, threading)
    watcher.start()
    REGISTRY.register(worker_lag_collector(settings, kafka, config.app_id).start())
    return app


def _follower_dead_letters(
    settings: Settings, kafka: KafkaSettings, publisher: KafkaPublisher, stage: str
) -> ThreadDeadLetters:
    """Where a topic follower of the worker sets aside a record it cannot take."""
    return ThreadDeadLetters(publisher, kafka.topics.dlq, stage, settings.max_record_bytes)


def _identity_directory(
    settings: Settings, kafka: KafkaSettings, publisher: KafkaPublisher
) -> IdentityDirectory:
    """The customer directory, loaded from the identity topic and following it from now on."""
    directory = IdentityDirectory(
        settings.phone_region,
        worker=settings.worker_id,
        verified_channels=settings.verified_channel_set,
        mail_links_require_dmarc=settings.mail_links_require_dmarc,
    )
    watcher = IdentityWatcher(
        kafka.librdkafka(),
        kafka.topics.identity,
        directory,
        _follower_dead_letters(settings, kafka, publisher, "identity-watch"),
    )
    loaded = watcher.load_current()
    log.info("identity: %d decisions loaded from %s", loaded, kafka.topics.identity)
    watcher.start()
    return directory


def worker_lag_collector(settings: Settings, kafka: KafkaSettings, group: str) -> KafkaLagCollector:
    """Lag of the worker group on its inputs, the DLQ size and the unrouted messages."""
    topics = kafka.topics
    pipeline = [topics.inbound, topics.resolved, topics.threaded]
    return KafkaLagCollector(
        kafka.librdkafka(),
        [WatchedGroup(group, [*pipeline, topics.agent_actions])],
        dead_letter_topic=topics.dlq,
        unrouted=WatchedGroup(group, pipeline),
        unrouted_after_seconds=settings.unrouted_after_seconds,
        refresh_seconds=settings.lag_refresh_seconds,
    )


def _embedded_broker_tuning(settings: Settings) -> dict[str, Any]:
    """Faust settings the embedded Tansu broker needs (demo only; nothing for real Kafka)."""
    if settings.embedded_broker != "tansu":
        return {}
    # imported here: the demo broker is no concern of a production worker
    from escalator.embedded_broker import FAUST_SETTINGS_FOR_TANSU  # noqa: PLC0415

    return dict(FAUST_SETTINGS_FOR_TANSU)


def _embedded_broker_fetch_wait(settings: Settings) -> int | None:
    """The worker's fetch wait on the embedded Tansu broker (None: faust's own, 1,500 ms)."""
    if settings.embedded_broker != "tansu":
        return None
    from escalator.embedded_broker import FETCH_MAX_WAIT_MS_FOR_TANSU  # noqa: PLC0415

    return FETCH_MAX_WAIT_MS_FOR_TANSU


def consumer_config(
    settings: Settings, kafka: KafkaSettings
) -> dict[str, str | int | float | bool]:
    """librdkafka settings for a consumer-group client (the projection), tuned for Tansu."""
    config = kafka.librdkafka()
    if settings.embedded_broker == "tansu":
        from escalator.embedded_broker import LIBRDKAFKA_CONSUMER_SETTINGS_FOR_TANSU  # noqa: PLC0415

        config.update(LIBRDKAFKA_CONSUMER_SETTINGS_FOR_TANSU)
    return config


def _rules_with_hot_reload(
    settings: Settings, kafka: KafkaSettings, publisher: KafkaPublisher
) -> tuple[RuleSetHolder, RulesWatcher]:
    """The rule set to start with, and a watcher that swaps in every newly published one.

    A set published to the rules topic wins over `ESCALATOR_RULES`, so a restarted worker
    runs what its peers run rather than an older file.
    """
    holder: RuleSetHolder

    def on_ruleset(ruleset: CompiledRuleSet) -> None:
        ensure_topics(kafka, {kafka.topics.queue(name): {} for name in ruleset.queues})
        holder.replace(ruleset)

    watcher = RulesWatcher(
        kafka.librdkafka(),
        kafka.topics.rules,
        on_ruleset,
        _follower_dead_letters(settings, kafka, publisher, "rules-watch"),
    )
    published = watcher.load_current()
    if published is not None:
        log.info("starting with published rule set %s", published.version)
    holder = RuleSetHolder(published or load_rules(settings))
    shadow = ShadowWatcher(
        kafka.librdkafka(),
        kafka.topics.rules_candidate,
        holder.replace_shadow,
        _follower_dead_letters(settings, kafka, publisher, "shadow-watch"),
    )
    shadow.load_current()
    shadow.start()
    return holder, watcher


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


def escalation_links(settings: Settings, for_ingress: bool = False) -> EscalationLinks | None:
    """The signer of customers' escalation links, when ESCALATOR_ESCALATE_LINK_* are set.

    The worker needs the secret and the public URL (it writes links); the ingress only the
    secret (it checks them).
    """
    secret = _secret_value(settings.escalate_link_secret)
    if not secret or not (settings.escalate_link_url or for_ingress):
        return None
    return EscalationLinks(
        secret, settings.escalate_link_url or "", settings.escalate_link_lifetime
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


def _secret_value(secret: SecretStr | None) -> str | None:
    return None if secret is None else secret.get_secret_value()


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
                twilio_auth_token=_secret_value(twilio.auth_token),
                twilio_api_url=twilio.api_url,
                sms_from=outbound.pager_sms_from,
                slack_bot_token=_secret_value(slack.bot_token),
                slack_api_url=slack.api_url,
                smtp=email.relay,
                mail_from=outbound.notify_from or email.reply_from,
                console_url=outbound.console_url,
            ),
            client,
        ),
    )
