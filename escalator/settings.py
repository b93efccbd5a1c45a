"""Settings from the environment (twelve-factor): one typed object per external system.

Every process takes the broker address from `KAFKA_BOOTSTRAP_SERVERS`, as Kafka tools do;
everything else is `ESCALATOR_*`. `KafkaSettings` lives on the Kafka floor (`kafkaio`) and
is re-exported here.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from kafkaio.settings import KafkaSettings

__all__ = ["ChannelSettings", "KafkaSettings", "OutboundSettings", "Settings"]


class Settings(BaseSettings):
    """Escalator's own settings (`ESCALATOR_*`)."""

    model_config = SettingsConfigDict(env_prefix="ESCALATOR_", extra="ignore")

    rules: Path | None = Field(
        default=None, description="Rule file or folder; built-in default if unset."
    )
    data_dir: Path = Path("var")
    database_url: str | None = Field(default=None, description="SQLAlchemy URL of the case store.")
    worker_id: str = "escalator-worker"
    worker_web_port: int = 6066
    worker_web_host: str = Field(
        default="127.0.0.1", description="Address of the worker's /metrics, /healthz, /readyz."
    )
    http_host: str = "127.0.0.1"
    http_port: int = 8080
    http_workers: int = Field(
        default=1,
        ge=0,
        description="Processes of `escalator connect http` sharing its port: 0 = one per CPU "
        "core. With more than one they share the webhook replay window and /metrics.",
    )
    webhook_replay_store: Path | None = Field(
        default=None,
        description="SQLite file of the webhook replay window shared by the ingress's processes "
        "(`escalator connect http` sets it itself when it runs several; unset: in memory).",
    )
    ingress_auth: Literal["keys", "none"] = Field(
        default="keys",
        description="`keys`: POST /v1/messages needs an API key from ESCALATOR_INGRESS_KEYS_FILE; "
        "`none`: anyone may publish and set trust fields (development only; warned at start).",
    )
    ingress_keys_file: Path | None = Field(
        default=None,
        description="The ingress's API keys (hashes only), written by `escalator ingress keys`; "
        "re-read when it changes. Unset with auth `keys`: every POST /v1/messages gets 401.",
    )
    ingress_metrics_port: int | None = Field(
        default=None,
        description="Serve the ingress's /metrics on this port (and not on ESCALATOR_HTTP_PORT).",
    )
    ingress_metrics_host: str = Field(
        default="127.0.0.1", description="Address of the ingress's separate /metrics port."
    )
    webhook_replay_cache_size: int = Field(
        default=100_000, ge=1, description="Webhook deliveries remembered per ingress process."
    )
    webhook_replay_window_seconds: float = Field(
        default=86_400.0, gt=0, description="How long a webhook delivery is remembered."
    )
    projection_metrics_port: int = 9464
    desk_host: str = Field(default="127.0.0.1", description="Address the desk API listens on.")
    desk_port: int = Field(default=8090, description="Port of the desk API and console.")
    desk_verdict_timeout_seconds: float = Field(
        default=10.0,
        gt=0,
        description="How long a desk write waits for the stream's verdict before answering 202.",
    )
    desk_presence_timeout_seconds: float = Field(
        default=90.0,
        gt=0,
        description="An agent with no heartbeat for this long goes offline (cases back to queue).",
    )
    desk_assigner: bool = Field(
        default=True, description="Desk processes elect one of them to assign push queues."
    )
    desk_plain_http: bool = Field(
        default=False,
        description="Development over plain HTTP only: the console's cookie is not marked Secure.",
    )
    desk_login_failures_per_address: int = Field(
        default=10, ge=1, description="Failed desk sign-ins one address may make per window."
    )
    desk_logins_per_agent: int = Field(
        default=10, ge=1, description="Console logins one agent may make per window."
    )
    desk_login_window_seconds: float = Field(
        default=300.0, gt=0, description="The window of the desk's sign-in limits."
    )
    pagerduty_webhook_secrets: list[SecretStr] = Field(
        default_factory=list,
        description="PagerDuty v3 webhook subscription secrets, as JSON (two during a rotation); "
        "the desk's POST /v1/pagers/pagerduty refuses every request without them.",
    )
    opsgenie_webhook_secret: SecretStr | None = Field(
        default=None,
        description="Shared secret Opsgenie's webhook sends in X-Escalator-Webhook-Secret.",
    )
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    log_level: str = "INFO"
    phone_region: str | None = Field(
        default=None,
        description="Region (ISO 3166 code, e.g. DE) for phone numbers written without a "
        "country code; without it only international numbers (+…) are recognised.",
    )
    verified_channels: str = Field(
        default="chat,webform",
        description="Comma-separated channels whose customer.verified (email, phone) is "
        "believed and links handles to one customer; only list channels your own systems sign.",
    )
    mail_links_require_dmarc: bool = Field(
        default=True,
        description="Mail follows and makes identity links only when DMARC passed for its "
        "From domain (customer.verified set by Escalator's mail connectors); false: any mail.",
    )
    thread_window: timedelta = Field(
        default=timedelta(days=7),
        description="A customer's open case takes their next message if its last message is "
        "at most this old (seconds or ISO 8601, e.g. P7D).",
    )
    reopen_window: timedelta = Field(
        default=timedelta(days=7),
        description="A message to a resolved case reopens it within this time of the "
        "resolution; later ones open a new case (seconds or ISO 8601).",
    )
    history_window: timedelta = Field(
        default=timedelta(days=30),
        description="history.recent_cases counts the customer's other cases opened at most "
        "this long before the message (seconds or ISO 8601, e.g. P30D).",
    )
    repeat_contact_window: timedelta = Field(
        default=timedelta(days=7),
        description="Customer effort: a new case of a customer this soon after one of their "
        "resolutions is a repeat contact (seconds or ISO 8601, e.g. P7D).",
    )
    effort_settle_grace: timedelta = Field(
        default=timedelta(hours=1),
        description="Customer effort: a resolution is judged (first contact or not) this long "
        "after its repeat window ends, so late events are in (seconds or ISO 8601).",
    )
    log_format: Literal["text", "json"] = Field(
        default="text", description="`json`: one JSON object per log line, with case_id, trace_id."
    )
    log_redact: bool = Field(
        default=False, description="Replace message bodies and personal data in logs."
    )
    smtp_metrics_port: int = Field(default=9466, description="/metrics, /healthz, /readyz of smtp.")
    imap_metrics_port: int = Field(default=9467, description="/metrics, /healthz, /readyz of imap.")
    unrouted_after_seconds: float = Field(
        default=60.0, gt=0, description="A message not consumed this long counts as unrouted."
    )
    lag_refresh_seconds: float = Field(
        default=5.0, gt=0, description="How often consumer lag and the DLQ size are measured."
    )
    sla_lateness_seconds: float = Field(
        default=0.1,
        ge=0,
        description="The SLA timer fires a deadline this long after it passes, so an agent "
        "action stamped just before it (a claim, a reply) reaches the case first.",
    )
    sla_prepare_seconds: float = Field(
        default=60.0,
        ge=0,
        description="How far ahead the SLA timer works out firings while idle (0: never).",
    )
    sla_prepare_limit: int = Field(
        default=20_000, ge=0, description="Most SLA firings kept worked out ahead (a few KB each)."
    )
    embedded_broker: Literal["tansu"] | None = Field(
        default=None, description="Set by `escalator demo`: the broker is the embedded Tansu."
    )
    stall_seconds: float = Field(
        default=60.0,
        ge=0,
        description="A worker stage or the projection with input waiting and no progress "
        "this long fails /readyz (0: never).",
    )
    max_record_bytes: int = Field(
        default=900_000,
        ge=10_000,
        description="Largest record the worker writes; a larger one becomes a dead letter "
        "that refers to it. Keep it under the broker's message.max.bytes.",
    )

    escalate_link_secret: SecretStr | None = Field(
        default=None,
        description="Signs the customers' escalation links (links.escalate in acknowledgements); "
        "the worker and the ingress need the same one. Unset: links are empty, the page is off.",
    )
    escalate_link_url: str | None = Field(
        default=None,
        description="Public URL of the ingress the links point to, e.g. https://help.example.com.",
    )
    escalate_link_lifetime: timedelta = Field(
        default=timedelta(days=30),
        description="How long an escalation link works after its acknowledgement (seconds or "
        "ISO 8601).",
    )

    @field_validator(
        "thread_window",
        "reopen_window",
        "history_window",
        "repeat_contact_window",
        "effort_settle_grace",
        "escalate_link_lifetime",
        mode="before",
    )
    @classmethod
    def _seconds_or_iso(cls, value: object) -> object:
        """A plain number (as environment variables are strings) counts seconds."""
        if isinstance(value, str) and value.strip().replace(".", "", 1).isdigit():
            return float(value)
        return value

    @property
    def verified_channel_set(self) -> frozenset[str]:
        """The channels whose verified attributes link handles, lowercased."""
        return frozenset(c.strip().lower() for c in self.verified_channels.split(",") if c.strip())

    @property
    def effective_database_url(self) -> str:
        """The case store URL: the setting, or a SQLite file under the data directory."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'escalator.db').as_posix()}"


class ChannelSettings(BaseSettings):
    """What every channel webhook shares (`ESCALATOR_*`).

    Each provider's own settings (secrets, tokens, API URLs, inbound and outbound alike) are
    one class in its plugin module (`connectors.channels.registry.PLUGINS`), e.g.
    `TwilioSettings` for `ESCALATOR_TWILIO_*`; mail's are `connectors.email.plugin.EmailSettings`.
    """

    model_config = SettingsConfigDict(env_prefix="ESCALATOR_", extra="ignore")

    webhook_tolerance_seconds: int = Field(
        default=300, ge=1, description="Replay window of signed timestamps, in seconds."
    )


class OutboundSettings(BaseSettings):
    """Reply delivery and escalation notifications (`escalator connect replies`, `ESCALATOR_*`).

    A channel without its credentials is not served: its replies become `reply.failed`
    events (reason `not_configured`), never silently dropped. The credentials are each
    provider's own settings (`connectors.channels.registry.PLUGINS`).
    """

    model_config = SettingsConfigDict(env_prefix="ESCALATOR_", extra="ignore")

    reply_attempts: int = Field(default=6, ge=1, description="Tries before reply.failed.")
    reply_backoff_seconds: float = Field(default=1.0, gt=0)
    reply_max_backoff_seconds: float = Field(default=60.0, gt=0)
    replies_from_beginning: bool = Field(
        default=False,
        description="On the group's very first start, read cases.events from the beginning "
        "(default: from the end, so old replies are not sent again).",
    )
    replies_metrics_port: int = 9465
    acknowledgement_window_seconds: float = Field(
        default=3_600.0,
        ge=0,
        description="At most one acknowledgement per customer and recipient within this long "
        "(RFC 3834); "
        "keep it under reply_dedup_seconds, which bounds what the service remembers.",
    )
    reply_dedup_entries: int = Field(
        default=200_000,
        ge=1_000,
        description="Delivery keys the reply service remembers to never send one twice.",
    )
    reply_dedup_seconds: float = Field(
        default=259_200.0,
        ge=3_600.0,
        description="How long a delivery key is remembered (3 days): also the retention of "
        "the replies.deliveries topic when the service creates it.",
    )
    notify_slack_webhooks: dict[str, str] = Field(
        default_factory=dict,
        description='Notify target → Slack incoming webhook URL, as JSON: {"team-leads": "https://hooks.slack.com/…"}.',
    )
    notify_emails: dict[str, list[str]] = Field(
        default_factory=dict,
        description='Notify target → addresses, as JSON: {"team-leads": ["lead@example.com"]}.',
    )
    notify_from: str | None = Field(default=None, description="From address of notification mail.")
    pager_keys: dict[str, SecretStr] = Field(
        default_factory=dict,
        description="Pager name (rules' pagers:) → its secret, as JSON: a PagerDuty routing key, "
        "an Opsgenie API key, or a Slack incoming webhook URL.",
    )
    pagerduty_events_url: str = "https://events.pagerduty.com/v2/enqueue"
    opsgenie_api_url: str = Field(
        default="https://api.opsgenie.com", description="EU accounts: https://api.eu.opsgenie.com"
    )
    pager_sms_from: str | None = Field(default=None, description="Twilio number pages come from.")
    console_url: str | None = Field(
        default=None, description="The desk's public URL, for links to a case in pages."
    )
