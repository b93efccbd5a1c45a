"""The one translation of `KafkaSettings` into faust (aiokafka) settings.

faust is imported only here and only by the worker, so the other processes never pay for it.
"""

from __future__ import annotations

import ssl
from typing import Any

import faust

from kafkaio.admin import Replication, TopicSpec
from kafkaio.settings import KafkaSettings


def faust_broker_url(kafka: KafkaSettings) -> str:
    """The `kafka://` URL list faust expects, from `KAFKA_BOOTSTRAP_SERVERS`."""
    return ";".join(f"kafka://{server.strip()}" for server in kafka.bootstrap_servers.split(","))


def faust_security(kafka: KafkaSettings) -> dict[str, Any]:
    """Faust settings carrying Kafka security (SASL/TLS) through to aiokafka."""
    if kafka.security_protocol == "PLAINTEXT":
        return {}
    ssl_context = None
    if kafka.security_protocol.endswith("SSL"):
        cafile = str(kafka.ssl_cafile) if kafka.ssl_cafile else None
        ssl_context = ssl.create_default_context(cafile=cafile)
    if kafka.sasl_mechanism:
        password = kafka.sasl_password.get_secret_value() if kafka.sasl_password else ""
        credentials: Any = faust.SASLCredentials(
            username=kafka.sasl_username or "",
            password=password,
            mechanism=kafka.sasl_mechanism,
            ssl_context=ssl_context,
        )
    else:
        credentials = faust.SSLCredentials(ssl_context)
    return {"broker_credentials": credentials}


def faust_internal_topics(app_id: str) -> dict[str, TopicSpec]:
    """faust's own topics, to create (`create_missing_topics`) before the app starts.

    faust creates its partition assignor's leader topic with `topic_replication_factor`
    but cannot give it a `min.insync.replicas`; created first by us, it gets both (faust
    leaves an existing topic alone).
    """
    return {f"{app_id}-__assignor-__leader": TopicSpec(partitions=1)}


def faust_replication(replication: Replication) -> dict[str, Any]:
    """faust settings that replicate every topic faust itself creates like ours."""
    return {"topic_replication_factor": replication.factor}
