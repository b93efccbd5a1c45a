"""The Kafka settings and their one translation per client library (librdkafka, aiokafka)."""

from __future__ import annotations

import ssl

import faust
import pytest

from escalator import settings as escalator_settings
from kafkaio.faust_config import faust_broker_url, faust_security
from kafkaio.settings import KafkaSettings

SASL_ENV = {
    "KAFKA_BOOTSTRAP_SERVERS": "k1:9093, k2:9093",
    "ESCALATOR_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
    "ESCALATOR_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
    "ESCALATOR_KAFKA_SASL_USERNAME": "escalator",
    "ESCALATOR_KAFKA_SASL_PASSWORD": "s3cret",
}


def test_the_old_home_still_exports_the_settings() -> None:
    assert escalator_settings.KafkaSettings is KafkaSettings


def test_librdkafka_gets_the_connection_and_security(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in SASL_ENV.items():
        monkeypatch.setenv(name, value)
    kafka = KafkaSettings()
    assert kafka.librdkafka() == {
        "bootstrap.servers": "k1:9093, k2:9093",
        "security.protocol": "sasl_ssl",
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": "escalator",
        "sasl.password": "s3cret",
    }
    assert "s3cret" not in repr(kafka)


def test_faust_gets_the_same_connection_and_security(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in SASL_ENV.items():
        monkeypatch.setenv(name, value)
    kafka = KafkaSettings()
    assert faust_broker_url(kafka) == "kafka://k1:9093;kafka://k2:9093"
    credentials = faust_security(kafka)["broker_credentials"]
    assert isinstance(credentials, faust.SASLCredentials)
    assert (credentials.username, credentials.password) == ("escalator", "s3cret")
    assert isinstance(credentials.ssl_context, ssl.SSLContext)


def test_plaintext_needs_no_faust_credentials() -> None:
    assert faust_security(KafkaSettings()) == {}
