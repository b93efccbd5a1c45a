"""`escalator connect replies` killed with SIGKILL in the middle of a batch, twice, then left
to finish: no customer gets a reply twice, and every reply is delivered or reported.

Real processes on the real broker, delivering to a local SMTP server and a local reply
webhook. A kill can land after a provider accepted a reply and before the service recorded
it: that reply's outcome is unknown, so it is reported `in_doubt` (never sent again), at
most one per kill.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from escalator.demo import processes
from schemas import CaseEvent, Topics
from tests.connectors.peers import eventually, http_peer, smtp_peer
from tests.connectors.test_outbound import CASE, all_committed, publish, reply_event
from tests.kafka_support import consume_until, create_topics

pytestmark = pytest.mark.kafka

EMAILS = 60
WEBHOOKS = 30
KILLS_AT = (10, 25)  # mails received when each SIGKILL is sent


@pytest.fixture
def started() -> Iterator[list[processes.ManagedProcess]]:
    """Processes the test starts, stopped afterwards."""
    running: list[processes.ManagedProcess] = []
    yield running
    for process in running:
        process.stop()


def wait_for(check: Callable[[], bool], process: processes.ManagedProcess, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if not process.alive:
            raise AssertionError(process.log_path.read_text(errors="replace")[-3000:])
        assert time.monotonic() < deadline, process.log_path.read_text(errors="replace")[-3000:]
        time.sleep(0.01)


def kill9(process: processes.ManagedProcess) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.process.pid, signal.SIGKILL)
    process.process.wait(timeout=10)


def test_replies_killed_mid_batch_never_send_a_reply_twice(
    kafka_bootstrap: str, topics: Topics, tmp_path: Path, started: list[processes.ManagedProcess]
) -> None:
    emails = [reply_event(f"m{n}", "email", recipient=f"c{n}@example.com") for n in range(EMAILS)]
    hooks = [reply_event(f"w{n}", "chat", recipient=f"visitor-{n}") for n in range(WEBHOOKS)]
    create_topics(kafka_bootstrap, [topics.case_events])
    with smtp_peer() as mail, http_peer() as hook:
        # The relay answers QUIT slowly: a kill right after it accepted a mail lands before
        # the service could record the delivery, the one window no ledger can close.
        mail.quit_delay_seconds = 0.2
        pairs = zip(emails[:WEBHOOKS], hooks, strict=True)
        publish(kafka_bootstrap, topics, *[event for pair in pairs for event in pair])
        publish(kafka_bootstrap, topics, *emails[WEBHOOKS:])
        env = {
            "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
            "ESCALATOR_TOPIC_PREFIX": topics.prefix,
            "ESCALATOR_REPLIES_FROM_BEGINNING": "true",
            "ESCALATOR_REPLY_FROM": "help@acme.test",
            "ESCALATOR_SMTP_RELAY_HOST": mail.host,
            "ESCALATOR_SMTP_RELAY_PORT": str(mail.port),
            "ESCALATOR_REPLY_WEBHOOK_URL": hook.url,
            "ESCALATOR_REPLY_WEBHOOK_SECRET": "s",
            "ESCALATOR_REPLY_BACKOFF_SECONDS": "0.1",
            "ESCALATOR_LOG_LEVEL": "INFO",
        }
        for run, kill_at in enumerate(KILLS_AT):
            env["ESCALATOR_REPLIES_METRICS_PORT"] = str(processes.free_port())
            process = processes.start(f"replies-{run}", ["connect", "replies"], env, tmp_path)
            started.append(process)
            wait_for(lambda at=kill_at: len(mail.mails) >= at, process, timeout=120)
            kill9(process)
        env["ESCALATOR_REPLIES_METRICS_PORT"] = str(processes.free_port())
        last = processes.start("replies-last", ["connect", "replies"], env, tmp_path)
        started.append(last)
        wait_for(lambda: all_committed(kafka_bootstrap, topics), last, timeout=180)
        failed = [
            CaseEvent.model_validate_json(record.value or b"")
            for record in consume_until(
                kafka_bootstrap, topics.case_events, lambda _: False, 10, raise_on_timeout=False
            )
            if json.loads(record.value or b"{}").get("type") == "reply.failed"
        ]
        last.stop()
        assert eventually(lambda: not last.alive)

    mails_per_id = Counter(str(message["Message-ID"]) for _, message in mail.mails)
    calls_per_key = Counter(call.headers["idempotency-key"] for call in hook.calls)
    in_doubt = {event.payload["message_key"] for event in failed}
    assert {event.payload["reason"] for event in failed} <= {"in_doubt"}
    assert len(in_doubt) <= len(KILLS_AT)  # one record in flight per process at a kill
    # no customer got any reply twice, by mail or by webhook
    assert max(mails_per_id.values()) == 1
    assert max(calls_per_key.values()) == 1
    # every reply was delivered, or reported in doubt (and then delivered at most once)
    delivered = {f"agent:{mid.split('.')[0].lstrip('<')}" for mid in mails_per_id}
    delivered |= set(calls_per_key)
    expected = {f"agent:m{n}" for n in range(EMAILS)} | {f"agent:w{n}" for n in range(WEBHOOKS)}
    assert delivered | in_doubt == expected
    assert all(f"[#{CASE}]" in str(message["Subject"]) for _, message in mail.mails)
    print(  # the figures of this run, for `pytest -s`
        json.dumps(
            {
                "replies": EMAILS + WEBHOOKS,
                "kills": len(KILLS_AT),
                "in_doubt": len(in_doubt),
                "in_doubt_but_delivered": len(in_doubt & delivered),
                "sent_twice": sum(1 for c in (mails_per_id + calls_per_key).values() if c > 1),
            }
        )
    )
