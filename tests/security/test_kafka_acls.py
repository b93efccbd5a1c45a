"""Least privilege on a real broker with the ACL authorizer: one principal per component.

`escalator kafka acls --apply` (run as the admin) grants each component what it needs and no
more. The internet-facing ingress's principal can publish inbound messages and nothing else:
a stolen ingress credential cannot publish a rule set or an agent action. And the whole
pipeline still runs with each process on its own principal.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest
from confluent_kafka import KafkaError, Producer

from escalator.demo import processes
from schemas import Topics
from tests.deploy.conftest import case_of, message
from tests.security.conftest import AclBroker
from tests.security.test_kafka_sasl import outbound_replies
from tests.stack_support import escalator_stack

pytestmark = pytest.mark.kafka


def _escalator(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "escalator", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _grant(acl_broker: AclBroker, prefix: str) -> None:
    env = {**acl_broker.admin.escalator_env(), "ESCALATOR_TOPIC_PREFIX": prefix}
    applied = _escalator(env, "kafka", "acls", "--apply")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert "applied" in applied.stdout


def _produce(config: dict[str, str], topic: str) -> KafkaError | None:
    """Write one record; the delivery error, or None when the broker took it."""
    outcome: list[KafkaError | None] = []
    producer = Producer({**config, "acks": "all", "message.timeout.ms": 15000})
    producer.produce(topic, b"probe", on_delivery=lambda error, _msg: outcome.append(error))
    producer.flush(30)
    assert outcome, "no delivery report"
    return outcome[0]


def test_the_ingress_principal_can_only_write_inbound(acl_broker: AclBroker) -> None:
    prefix = f"a{uuid.uuid4().hex[:8]}."
    topics = Topics(prefix)
    _grant(acl_broker, prefix)
    rules_env = {**acl_broker.principal("rules").escalator_env(), "ESCALATOR_TOPIC_PREFIX": prefix}
    desk = acl_broker.principal("desk").client_config()
    assert _produce(desk, topics.agent_actions) is None  # creates it, as the desk would
    ingress = acl_broker.principal("ingress").client_config()

    assert _produce(ingress, topics.inbound) is None
    for forbidden in (topics.rules, topics.agent_actions, topics.case_events):
        error = _produce(ingress, forbidden)
        assert error is not None, f"the ingress principal wrote {forbidden}"
        assert error.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED, error

    rules_file = Path(__file__).resolve().parents[2] / "examples" / "rules"
    ingress_env = {
        **acl_broker.principal("ingress").escalator_env(),
        "ESCALATOR_TOPIC_PREFIX": prefix,
    }
    refused = _escalator(ingress_env, "rules", "publish", str(rules_file))
    assert refused.returncode != 0, "the ingress principal published a rule set"
    published = _escalator(rules_env, "rules", "publish", str(rules_file))
    assert published.returncode == 0, published.stdout + published.stderr
    # the rules principal keeps and reads the history and rolls back; the ingress cannot
    for args in (("history",), ("rollback", "1")):
        done = _escalator(rules_env, "rules", *args)
        assert done.returncode == 0, done.stdout + done.stderr
    assert "published as version 2" in done.stdout
    assert _escalator(ingress_env, "rules", "rollback", "1").returncode != 0


def test_the_pipeline_runs_with_one_principal_per_component(
    acl_broker: AclBroker, tmp_path: Path
) -> None:
    prefix = f"a{uuid.uuid4().hex[:8]}."
    _grant(acl_broker, prefix)

    def env_of(component: str) -> dict[str, str]:
        return acl_broker.principal(component).escalator_env()

    with escalator_stack(acl_broker.bootstrap, prefix, tmp_path) as stack:
        base = dict(stack.env)
        stack.env = {**base, **env_of("worker")}
        stack.start_worker()
        stack.env = {**base, **env_of("ingress")}
        stack.start_ingress()
        stack.env = {**base, **env_of("projection")}
        stack.start_projection()
        stack.env = {**base, **env_of("replies")}
        stack.start_replies()
        body = message("acl-1", "My parcel never arrived")
        answer = httpx.post(f"{stack.ingress_url}/v1/messages", json=body, timeout=30)
        assert answer.status_code == 202, answer.text
        database = tmp_path / "escalator.db"
        case_id = case_of(database, "acl-1", timeout_seconds=120)
        act = _escalator(
            {**base, **env_of("desk")}, "cases", "act", case_id, "reply", "--text", "Hi"
        )
        assert act.returncode == 0, act.stdout + act.stderr
        deadline = time.monotonic() + 60
        while outbound_replies(database, case_id) == 0:
            assert time.monotonic() < deadline, "the reply never reached the case store"
            time.sleep(0.3)
        desk_port = processes.free_port()
        desk = processes.start(
            "desk",
            ["desk", "--port", str(desk_port)],
            {**base, **env_of("desk")},
            tmp_path / "logs",
        )
        stack.started.append(desk)
        processes.wait_until_ready(f"http://127.0.0.1:{desk_port}/readyz", desk, 90)
