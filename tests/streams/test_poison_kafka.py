"""A real worker on the real broker survives poison records on every input topic.

Records published straight to the topics (as anyone allowed to write there can): a message
whose metadata nests past what the internal topics can parse, a transfer to a queue name
the topics refuse, an invalid inbound record too large for its bytes to travel in a dead
letter. Each becomes a dead letter; the worker keeps running, stays ready and routes the
messages that follow.
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from schemas import Case, DeadLetter, Topics
from tests.kafka_support import consume_until, produce
from tests.stack_support import escalator_stack
from tests.streams.test_pipeline_kafka import message
from tests.streams.test_poison import deep_resolved_record, invalid_queue_action

BIG_INVALID = b'{"text": "' + b"x" * 800_000 + b'"}'
"""An invalid inbound record whose base64 would not fit in a dead letter under 1 MB."""


def test_poison_records_are_dead_lettered_and_the_worker_goes_on(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    topics = Topics(topic_prefix)
    with escalator_stack(kafka_bootstrap, topic_prefix, tmp_path) as stack:
        worker = stack.start_worker()
        produce(
            kafka_bootstrap,
            topics.inbound,
            [
                ("ana@example.com", json.dumps(message("first", sender="ana@example.com"))),
                ("big", BIG_INVALID),
            ],
        )
        # metadata too deep to parse, written straight to stage B's input (the ingress and
        # stage A refuse it now; an older worker or a bug could still have written it)
        produce(kafka_bootstrap, topics.resolved, [("cus_eve", deep_resolved_record("deep"))])
        [routed] = consume_until(kafka_bootstrap, topics.queue("general"), 1, timeout=60)
        case = Case.model_validate_json(routed.value or b"")
        transfer = invalid_queue_action(case.case_id, "bad-transfer")  # refused by the contract
        produce(kafka_bootstrap, topics.agent_actions, [(case.case_id, transfer)])
        letters = [
            DeadLetter.model_validate_json(r.value or b"")
            for r in consume_until(kafka_bootstrap, topics.dlq, 3, timeout=90)
        ]
        by_stage = {letter.stage: letter for letter in letters}
        assert set(by_stage) == {"intake", "threading", "cases"}, letters
        assert by_stage["threading"].reason == "invalid_json"
        assert by_stage["threading"].source_topic == topics.resolved
        assert "Bad Queue" in by_stage["cases"].detail
        assert by_stage["cases"].source_topic == topics.agent_actions
        big = by_stage["intake"]
        assert big.original_omitted and big.original_size == len(BIG_INVALID)
        assert big.original_sha256 and big.source_topic == topics.inbound
        # the worker is alive, ready, and still routes
        produce(
            kafka_bootstrap,
            topics.inbound,
            [("bo@example.com", json.dumps(message("after", sender="bo@example.com")))],
        )
        consume_until(kafka_bootstrap, topics.queue("general"), 2, timeout=60)
        assert worker.process.poll() is None
        ready = httpx.get(f"{stack.worker_url}/readyz", timeout=10)
        assert ready.status_code == 200, ready.text
        scraped = stack.worker_metrics()
        assert scraped["escalator_dead_letters_total"] >= 3
