"""Rule set history on the real broker: publish, list, diff, roll back; workers follow it."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
from typer.testing import CliRunner

from escalator.cli import app
from kafkaio.errors import PublishError
from kafkaio.rules_history import (
    ensure_history_topic,
    publish_both,
    publisher_transactional_id,
    read_all,
)
from rules import CompiledRuleSet
from schemas import Topics
from streams.rules_watch import RulesWatcher

runner = CliRunner()

FIRST = """\
version: 1
queues: {general: {}}
routes: {queue: general, priority: normal}
"""
SECOND = """\
version: 1
queues: {general: {}, billing: {}}
routes:
  queue: general
  priority: normal
  routes:
    - name: billing
      when: {text: {any: [invoice]}}
      queue: billing
"""
THIRD = SECOND.replace("priority: normal", "priority: high")
BROKEN = "version: 1\nqueues: {general: {}}\nroutes: {queue: nowhere}\n"


def _cli(env: dict[str, str], *args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["rules", *args], env=env)
    return result.exit_code, result.output


def _publish(env: dict[str, str], folder: Path, text: str, *flags: str) -> str:
    (folder / "rules.yaml").write_text(text)
    code, output = _cli(env, "publish", str(folder), *flags)
    assert code == 0, output
    return output.split()[3]


def test_history_diff_and_rollback_to_what_workers_load(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    topics = Topics(topic_prefix)
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "ESCALATOR_KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "ESCALATOR_TOPIC_PREFIX": topic_prefix,
        "ESCALATOR_PUBLISHER": "ops-lead",
    }
    folder = tmp_path / "rules"
    folder.mkdir()
    code, output = _cli(env, "history")
    assert (code, output) == (0, "no rule set has been published yet\n")

    first = _publish(env, folder, FIRST, "--message", "the first set")
    second = _publish(env, folder, SECOND, "--publisher", "ana", "-m", "billing queue")
    (folder / "rules.yaml").write_text(BROKEN)
    code, _output = _cli(env, "publish", str(folder))
    assert code == 1  # refused: no version recorded
    third = _publish(env, folder, THIRD)

    code, output = _cli(env, "history", "--json")
    assert code == 0, output
    versions = json.loads(output)["versions"]
    assert [(v["version"], v["hash"], v["published_by"], v["message"]) for v in versions] == [
        (1, first, "ops-lead", "the first set"),
        (2, second, "ana", "billing queue"),
        (3, third, "ops-lead", None),
    ]
    code, output = _cli(env, "history")
    assert output.splitlines()[-1].startswith("* v3 ")
    assert "ana" in output.splitlines()[1] and "billing queue" in output.splitlines()[1]

    code, output = _cli(env, "diff", "2", "3")
    assert code == 0
    assert "-  priority: normal\n+  priority: high\n" in output
    assert output.startswith(f"--- v2:{folder / 'rules.yaml'}\n+++ v3:{folder / 'rules.yaml'}\n")
    code, output = _cli(env, "diff", "1", "2")
    assert "+    - name: billing\n" in output and "-queues: {general: {}}\n" in output
    code, output = _cli(env, "diff", "1", "7")
    assert code == 2 and "no rule set version 7 (published versions: 1 to 3)" in output

    # a worker already following the rules topic switches on the rollback, unchanged
    connection = {"bootstrap.servers": kafka_bootstrap}
    watcher = RulesWatcher(connection, topics.rules, lambda _ruleset: None)
    loaded = watcher.load_current()
    assert loaded is not None and loaded.version == third
    switched = threading.Event()
    seen: list[CompiledRuleSet] = []

    def on_ruleset(ruleset: CompiledRuleSet) -> None:
        seen.append(ruleset)
        switched.set()

    watcher._on_ruleset = on_ruleset  # the worker's callback: record the swap
    watcher.start()
    try:
        code, output = _cli(env, "rollback", "1", "--message", "billing queue misroutes")
        assert code == 0, output
        assert output == f"rolled back to version 1 ({first}), published as version 4\n"
        assert switched.wait(30), "the running watcher did not see the rollback"
        assert seen[-1].version == first
    finally:
        watcher.stop()

    fresh = RulesWatcher(connection, topics.rules, lambda _ruleset: None)
    try:
        active = fresh.load_current()
    finally:
        fresh.stop()
    assert active is not None and active.version == first
    assert sorted(active.queues) == ["general"]

    code, output = _cli(env, "history", "--json")
    fourth = json.loads(output)["versions"][-1]
    assert (fourth["version"], fourth["hash"], fourth["rolled_back_from"]) == (4, first, 1)
    assert fourth["message"] == "billing queue misroutes"
    code, output = _cli(env, "diff", "1", "4")
    assert output == f"v1 and v4 have the same files ({first})\n"
    code, output = _cli(env, "rollback", "9")
    assert code == 2


def test_a_publish_that_fails_half_way_leaves_no_version(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    topics = Topics(topic_prefix)
    connection = {"bootstrap.servers": kafka_bootstrap}
    ensure_history_topic(connection, topics.rules_history, 1)
    # the history record is written first; the active set then cannot be: nothing is kept
    with pytest.raises(PublishError, match="rule set not published"):
        publish_both(
            connection,
            active=("not a valid topic name!", b"active", b"{}"),
            history=(topics.rules_history, b"publish-1", b"{}"),
            transactional_id=publisher_transactional_id(topics.rules),
            timeout_seconds=20,
        )
    assert read_all(connection, topics.rules_history) == []
