"""How to reach Kafka, and its one translation into librdkafka (confluent-kafka) settings.

Every process takes the broker address from `KAFKA_BOOTSTRAP_SERVERS`, as Kafka tools do;
security and topic settings are `ESCALATOR_KAFKA_*`. The translation for aiokafka (faust)
lives in `kafkaio.faust_config`, so importing the settings never imports faust.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from schemas import DEFAULT_PREFIX, Topics

LibrdkafkaConfig = dict[str, str | int | float | bool]
"""A confluent-kafka configuration: librdkafka's dotted keys and their values."""


class KafkaSettings(BaseSettings):
    """How to reach Kafka. Security settings pass through to every client."""

    model_config = SettingsConfigDict(env_prefix="ESCALATOR_KAFKA_", extra="ignore")

    bootstrap_servers: str = Field(
        default="localhost:9092",
        validation_alias=AliasChoices(
            "KAFKA_BOOTSTRAP_SERVERS", "ESCALATOR_KAFKA_BOOTSTRAP_SERVERS"
        ),
    )
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_cafile: Path | None = None
    topic_prefix: str = Field(
        default=DEFAULT_PREFIX,
        validation_alias=AliasChoices("ESCALATOR_TOPIC_PREFIX", "ESCALATOR_KAFKA_TOPIC_PREFIX"),
    )
    partitions: int = Field(default=4, ge=1, description="Partitions for topics Escalator creates.")
    replication_factor: int | None = Field(
        default=None,
        ge=1,
        description="Replicas of the topics Escalator creates; unset: 3, or the broker count "
        "when the cluster has fewer brokers.",
    )

    @property
    def topics(self) -> Topics:
        """The topic names for this deployment."""
        return Topics(self.topic_prefix)

    def librdkafka(self) -> LibrdkafkaConfig:
        """The connection part of a confluent-kafka (librdkafka) configuration."""
        config: LibrdkafkaConfig = {
            "bootstrap.servers": self.bootstrap_servers,
            "security.protocol": self.security_protocol.lower(),
        }
        if self.sasl_mechanism:
            config["sasl.mechanism"] = self.sasl_mechanism
        if self.sasl_username:
            config["sasl.username"] = self.sasl_username
        if self.sasl_password:
            config["sasl.password"] = self.sasl_password.get_secret_value()
        if self.ssl_cafile:
            config["ssl.ca.location"] = str(self.ssl_cafile)
        return config
