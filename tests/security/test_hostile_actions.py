"""An agent action naming a queue no topic can have is refused where it is made, never published.

Before the bound, `escalator cases act C-… transfer --queue "Bad Queue"` published the action;
the worker's `Topics.queue` then raised on it and the worker exited, again after each restart.
"""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from escalator.cli import app
from queues.desk.bodies import TransferBody
from schemas import AgentAction, Topics
from schemas.limits import is_queue_name

NOW = "2026-11-20T10:00:00Z"


@pytest.fixture
def unreachable_kafka(monkeypatch: pytest.MonkeyPatch) -> None:
    """Point the CLI at no broker, so nothing could be published even if the action passed."""
    monkeypatch.setenv("ESCALATOR_KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:1")
    monkeypatch.setenv("ESCALATOR_KAFKA_TOPIC_PREFIX", "hostile-actions-test.")


@pytest.mark.usefixtures("unreachable_kafka")
@pytest.mark.parametrize("queue", ["Bad Queue", "tier.2", "-lead", "x" * 101, "q/../../etc"])
def test_cases_act_refuses_a_transfer_to_an_invalid_queue_with_a_clear_error(queue: str) -> None:
    result = CliRunner().invoke(
        app, ["cases", "act", "C-ABCDEF2345", "transfer", "--queue", queue, "--agent", "sam"]
    )
    assert result.exit_code == 2, result.output
    assert f"invalid action: queue: invalid queue name {queue!r}" in result.output
    assert "use lowercase letters, digits, _ or -" in result.output


@pytest.mark.usefixtures("unreachable_kafka")
def test_cases_act_refuses_an_over_long_reply() -> None:
    result = CliRunner().invoke(
        app, ["cases", "act", "C-ABCDEF2345", "reply", "--text", "t" * 100_001]
    )
    assert result.exit_code == 2, result.output
    assert "invalid action: text: String should have at most 100000 characters" in result.output


NAMES = ["general", "tier-2", "a_b", "9", "x" * 100, "Bad Queue", "tier.2", "-lead", "x" * 101, ""]


def test_the_desk_the_contract_and_the_topics_agree_on_queue_names() -> None:
    """A name one of them takes, all of them take: an action can only name a routable queue."""
    for name in NAMES:
        try:
            Topics().queue(name)
            routable = True
        except ValueError:
            routable = False
        assert is_queue_name(name) is routable, name
        action = {"action_id": "a", "case_id": "C-ABCDEF2345", "agent_id": "sam", "at": NOW}
        try:
            AgentAction.model_validate({**action, "type": "transfer", "queue": name})
            acted = True
        except ValidationError:
            acted = False
        assert acted is (routable and bool(name)), name
        try:
            TransferBody.model_validate({"queue": name})
            desk = True
        except ValidationError:
            desk = False
        assert desk is (routable and bool(name)), name
