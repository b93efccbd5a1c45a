"""Hot reload through the real broker: a published rule set takes over without a restart."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from schemas import Case, CaseEvent, Topics
from tests.kafka_support import consume_until
from tests.stack_support import escalator_stack
from tests.streams.test_pipeline_kafka import message

FIRST = """
version: 1
queues: {general: {}}
routes: {queue: general, priority: normal}
"""
SECOND = """
version: 1
queues: {general: {}, billing: {}}
routes:
  queue: general
  priority: normal
  routes:
    - name: billing
      when: {text: {any: [charged, refund, invoice]}}
      queue: billing
      priority: high
"""
BROKEN = """
version: 1
queues: {general: {}}
routes: {queue: nowhere}
"""


def rules_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "escalator", "rules", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def wait_for_version(metrics_url: str, version: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    wanted = f'escalator_rules_info{{version="{version}"}} 1.0'
    while time.monotonic() < deadline:
        if wanted in httpx.get(metrics_url, timeout=5).text:
            return
        time.sleep(0.3)
    raise AssertionError(f"worker did not switch to {version}")


def test_published_rules_route_the_next_message_and_old_events_keep_old_version(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    topics = Topics(topic_prefix)
    first, second, broken = (tmp_path / name for name in ("v1.yaml", "v2.yaml", "bad.yaml"))
    first.write_text(FIRST)
    second.write_text(SECOND)
    broken.write_text(BROKEN)
    with escalator_stack(
        kafka_bootstrap, topic_prefix, tmp_path, ESCALATOR_RULES=str(first)
    ) as stack:
        stack.start_worker()
        stack.start_ingress()
        post = f"{stack.ingress_url}/v1/messages"
        assert httpx.post(post, json=message("r-1"), timeout=30).status_code == 202
        [before] = consume_until(kafka_bootstrap, topics.queue("general"), 1, timeout=60)
        old_version = Case.model_validate_json(before.value or b"").rules_version
        assert old_version

        refused = rules_cli(stack.env, "publish", str(broken))
        assert refused.returncode == 1
        assert "bad.yaml:4" in refused.stderr
        published = rules_cli(stack.env, "publish", str(second))
        assert published.returncode == 0, published.stderr
        new_version = published.stdout.split()[3]
        assert new_version != old_version
        wait_for_version(f"{stack.worker_url}/metrics", new_version)

        other = message("r-2", sender="ben@example.com")
        assert httpx.post(post, json=other, timeout=30).status_code == 202
        [after] = consume_until(kafka_bootstrap, topics.queue("billing"), 1, timeout=60)
        routed = Case.model_validate_json(after.value or b"")
        assert (routed.queue, routed.priority.value, routed.matched) == (
            "billing",
            "high",
            ["billing"],
        )
        assert routed.rules_version == new_version

        events = [
            CaseEvent.model_validate_json(r.value or b"")
            for r in consume_until(
                kafka_bootstrap,
                topics.case_events,
                lambda rs: sum(b"case.routed" in (r.value or b"") for r in rs) >= 2,
                timeout=30,
            )
        ]
        # the two cases sit on different partitions: put their events in event-time order
        routed_events = sorted((e for e in events if e.type == "case.routed"), key=lambda e: e.at)
        versions = [e.payload["rules_version"] for e in routed_events]
        assert versions == [old_version, new_version]


def test_worker_started_later_uses_the_published_set_over_its_file(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    topics = Topics(topic_prefix)
    (tmp_path / "v1.yaml").write_text(FIRST)
    (tmp_path / "v2.yaml").write_text(SECOND)
    env_rules = str(tmp_path / "v1.yaml")
    with escalator_stack(
        kafka_bootstrap, topic_prefix, tmp_path, ESCALATOR_RULES=env_rules
    ) as stack:
        assert rules_cli(stack.env, "publish", str(tmp_path / "v2.yaml")).returncode == 0
        stack.start_worker()
        stack.start_ingress()
        assert (
            httpx.post(
                f"{stack.ingress_url}/v1/messages", json=message("s-1"), timeout=30
            ).status_code
            == 202
        )
        [routed] = consume_until(kafka_bootstrap, topics.queue("billing"), 1, timeout=60)
        assert Case.model_validate_json(routed.value or b"").queue == "billing"
