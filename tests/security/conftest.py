"""A second, SASL-only Kafka broker for the security tests (never the shared one on 9092).

`deploy/kafka/kafka.sh` in its SASL profile: a SASL_PLAINTEXT listener accepting SCRAM-SHA-512
and PLAIN for one user created at format time, on its own ports and a private data dir. It is
started once per test session and stopped at the end.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
KAFKA_SH = REPO / "deploy" / "kafka" / "kafka.sh"
SASL_PORT = int(os.environ.get("ESCALATOR_TEST_SASL_PORT", "9192"))


@dataclass(frozen=True)
class SaslBroker:
    """Where the SASL broker listens and the one user it knows."""

    bootstrap: str
    username: str
    password: str

    def client_config(self, mechanism: str = "SCRAM-SHA-512") -> dict[str, str]:
        """librdkafka settings of an authenticated client."""
        return {
            "bootstrap.servers": self.bootstrap,
            "security.protocol": "sasl_plaintext",
            "sasl.mechanism": mechanism,
            "sasl.username": self.username,
            "sasl.password": self.password,
        }

    def escalator_env(self, mechanism: str = "SCRAM-SHA-512") -> dict[str, str]:
        """Escalator's settings for this broker, as an operator would set them."""
        return {
            "KAFKA_BOOTSTRAP_SERVERS": self.bootstrap,
            "ESCALATOR_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
            "ESCALATOR_KAFKA_SASL_MECHANISM": mechanism,
            "ESCALATOR_KAFKA_SASL_USERNAME": self.username,
            "ESCALATOR_KAFKA_SASL_PASSWORD": self.password,
        }


def _kafka_sh(command: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(KAFKA_SH), command],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


@pytest.fixture(scope="session")
def sasl_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SaslBroker]:
    """Start the SASL/SCRAM broker for the session; stop it afterwards."""
    broker = SaslBroker(f"localhost:{SASL_PORT}", "escalator", "scram-test-secret")
    env = {
        "KAFKA_PORT": str(SASL_PORT),
        "KAFKA_CONTROLLER_PORT": str(SASL_PORT + 1),
        "KAFKA_DATA_DIR": str(tmp_path_factory.mktemp("kafka-sasl")),
        "KAFKA_SASL_USERNAME": broker.username,
        "KAFKA_SASL_PASSWORD": broker.password,
        "KAFKA_HEAP_OPTS": "-Xms256m -Xmx512m",
    }
    started = _kafka_sh("start", env)
    if started.returncode != 0:
        pytest.fail(f"the SASL broker did not start:\n{started.stdout}{started.stderr}")
    try:
        yield broker
    finally:
        _kafka_sh("stop", env)


ACL_PORT = int(os.environ.get("ESCALATOR_TEST_ACL_PORT", "9392"))
COMPONENTS = ("ingress", "worker", "desk", "projection", "replies", "rules")


@dataclass(frozen=True)
class AclBroker:
    """A SASL broker with the ACL authorizer: `admin` is its one super user, and every
    component has its own SCRAM user (`escalator-<component>`) with no rights until granted."""

    admin: SaslBroker

    @property
    def bootstrap(self) -> str:
        """Where it listens."""
        return self.admin.bootstrap

    def principal(self, component: str) -> SaslBroker:
        """The credentials of one component's principal."""
        return SaslBroker(self.bootstrap, f"escalator-{component}", f"{component}-secret")


@pytest.fixture(scope="session")
def acl_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AclBroker]:
    """Start the SASL broker with ACLs enforced for the session; stop it afterwards."""
    broker = AclBroker(SaslBroker(f"localhost:{ACL_PORT}", "escalator", "acl-admin-secret"))
    users = ",".join(
        f"{broker.principal(c).username}={broker.principal(c).password}" for c in COMPONENTS
    )
    env = {
        "KAFKA_PORT": str(ACL_PORT),
        "KAFKA_CONTROLLER_PORT": str(ACL_PORT + 1),
        "KAFKA_DATA_DIR": str(tmp_path_factory.mktemp("kafka-acl")),
        "KAFKA_SASL_USERNAME": broker.admin.username,
        "KAFKA_SASL_PASSWORD": broker.admin.password,
        "KAFKA_SASL_USERS": users,
        "KAFKA_ACLS": "true",
        "KAFKA_HEAP_OPTS": "-Xms256m -Xmx512m",
    }
    started = _kafka_sh("start", env)
    if started.returncode != 0:
        pytest.fail(f"the ACL broker did not start:\n{started.stdout}{started.stderr}")
    try:
        yield broker
    finally:
        _kafka_sh("stop", env)
