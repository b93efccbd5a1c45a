"""The shadow rule set through the real broker and the real worker.

A shadow set published with `rules publish --shadow` is evaluated by the running worker on
live messages without acting on it: the case is routed by the active set, the
disagreement goes to `rules.shadow` with both decisions and is counted per field;
`rules shadow report` summarises it; `--shadow none` stops it; `rules promote` makes it
the active set (a new version) and the next message is routed by it.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx

from schemas import Case, ShadowDisagreement, Topics
from tests.kafka_support import consume_until, produce_json
from tests.stack_support import escalator_stack
from tests.streams.test_rules_reload_kafka import rules_cli

ACTIVE = """
version: 1
queues: {general: {}, billing: {}, tier2: {}}
routes:
  queue: general
  priority: normal
  routes:
    - name: billing
      when: {text: {any: [refund, invoice]}}
      queue: billing
"""
CANDIDATE = ACTIVE.replace("      queue: billing\n", "      queue: tier2\n")


def _metric(metrics_url: str, line: str) -> float:
    for row in httpx.get(metrics_url, timeout=5).text.splitlines():
        if row.startswith(line + " "):
            return float(row.split()[-1])
    return 0.0


def _wait_metric(metrics_url: str, line: str, value: float, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while _metric(metrics_url, line) != value:
        if time.monotonic() > deadline:
            raise AssertionError(f"{line} never became {value}")
        time.sleep(0.3)


def _send(bootstrap: str, topics: Topics, external_id: str, text: str) -> None:
    message = {
        "channel": "email",
        "external_id": external_id,
        "sender": f"{external_id}@example.com",
        "text": text,
        "sent_at": "2027-01-04T09:00:00Z",
    }
    produce_json(bootstrap, topics.inbound, [message], key=message["sender"])


def _routed(bootstrap: str, topics: Topics, queue: str, count: int) -> list[Case]:
    records = consume_until(bootstrap, topics.queue(queue), count, timeout=90)
    return [Case.model_validate_json(r.value or b"") for r in records]


def test_shadow_is_evaluated_reported_stopped_and_promoted(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    topics = Topics(topic_prefix)
    (tmp_path / "active.yaml").write_text(ACTIVE)
    (tmp_path / "candidate.yaml").write_text(CANDIDATE)
    with escalator_stack(
        kafka_bootstrap, topic_prefix, tmp_path, ESCALATOR_RULES=str(tmp_path / "active.yaml")
    ) as stack:
        stack.start_worker()
        metrics_url = f"{stack.worker_url}/metrics"
        published = rules_cli(stack.env, "publish", "--shadow", str(tmp_path / "candidate.yaml"))
        assert published.returncode == 0, published.stderr
        shadow_version = published.stdout.split()[3]
        _wait_metric(metrics_url, f'escalator_rules_shadow_info{{version="{shadow_version}"}}', 1)

        _send(kafka_bootstrap, topics, "s1", "please refund me")
        _send(kafka_bootstrap, topics, "s2", "hello there")
        [billing] = _routed(kafka_bootstrap, topics, "billing", 1)
        _routed(kafka_bootstrap, topics, "general", 1)
        [record] = consume_until(kafka_bootstrap, topics.rules_shadow, 1, timeout=60)
        disagreement = ShadowDisagreement.model_validate_json(record.value or b"")
        assert disagreement.case_id == billing.case_id  # routed by the active set, to billing
        assert disagreement.fields == ["queue"]
        assert disagreement.active["queue"] == "billing"
        assert disagreement.shadow["queue"] == "tier2"
        assert disagreement.shadow["rules_version"] == shadow_version
        assert (
            _metric(metrics_url, 'escalator_rules_shadow_disagreements_total{field="queue"}') == 1
        )
        assert _metric(metrics_url, "escalator_rules_shadow_evaluations_total") == 2

        shown = rules_cli(stack.env, "shadow", "report", "--json")
        assert shown.returncode == 0, shown.stderr
        report = json.loads(shown.stdout)
        assert report["shadow"] == shadow_version
        assert report["disagreements"] == 1 and report["cases"] == 1
        assert report["by_field"] == {"queue": 1}
        assert report["changes"] == [
            {"field": "queue", "active": "billing", "shadow": "tier2", "count": 1}
        ]
        human = rules_cli(stack.env, "shadow", "report").stdout
        assert "queue: billing → tier2  (1)" in human

        stopped = rules_cli(stack.env, "publish", "--shadow", "none")
        assert stopped.returncode == 0, stopped.stderr
        _wait_metric(metrics_url, f'escalator_rules_shadow_info{{version="{shadow_version}"}}', 0)
        _send(kafka_bootstrap, topics, "s3", "my invoice is wrong")
        _routed(kafka_bootstrap, topics, "billing", 2)
        assert _metric(metrics_url, "escalator_rules_shadow_evaluations_total") == 2
        assert (
            len(
                consume_until(
                    kafka_bootstrap, topics.rules_shadow, 2, timeout=3, raise_on_timeout=False
                )
            )
            == 1
        )

        again = rules_cli(stack.env, "publish", "--shadow", str(tmp_path / "candidate.yaml"))
        assert again.returncode == 0, again.stderr
        promoted = rules_cli(stack.env, "promote", "--publisher", "ops-lead")
        assert promoted.returncode == 0, promoted.stderr
        assert f"promoted shadow rule set {shadow_version}" in promoted.stdout
        _wait_metric(metrics_url, f'escalator_rules_info{{version="{shadow_version}"}}', 1)
        _send(kafka_bootstrap, topics, "s4", "refund again please")
        [moved] = _routed(kafka_bootstrap, topics, "tier2", 1)
        assert moved.rules_version == shadow_version
        history = json.loads(rules_cli(stack.env, "history", "--json").stdout)["versions"]
        assert history[-1]["hash"] == shadow_version
        assert history[-1]["published_by"] == "ops-lead"
        assert history[-1]["message"].startswith("promoted from the shadow set")
        after = json.loads(rules_cli(stack.env, "shadow", "report", "--json").stdout)
        assert after["active_shadow"] is None
        refused = rules_cli(stack.env, "promote")
        assert refused.returncode == 2
        assert "no shadow rule set to promote" in refused.stderr
