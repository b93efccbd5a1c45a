"""Wiring: builds each process's objects from settings. The only place that knows them all."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import faust
from prometheus_client import REGISTRY
from pydantic import SecretStr

from connectors.publisher import KafkaPublisher
from escalator.observability.kafka_lag import KafkaLagCollector, WatchedGroup
from escalator.rulefiles import read_referenced_file, read_rule_sources
from escalator.settings import KafkaSettings, Settings
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


def escalation_links(settings: Settings, for_ingress: bool = False) -> EscalationLinks | None:
    """The signer of customers' escalation links, when ESCALATOR_ESCALATE_LINK_* are set.

    The worker needs the secret and the public URL (it writes links); the ingress only the
    secret (it checks them).
    """
    secret = secret_value(settings.escalate_link_secret)
    if not secret or not (settings.escalate_link_url or for_ingress):
        return None
    return EscalationLinks(
        secret, settings.escalate_link_url or "", settings.escalate_link_lifetime
    )


def secret_value(secret: SecretStr | None) -> str | None:
    """The plain text of an optional secret setting."""
    return None if secret is None else secret.get_secret_value()
