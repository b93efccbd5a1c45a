"""`escalator agents`: add prints the token once (stored hashed), queues and list, bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy import select

from queues import make_engine, make_session_factory, upgrade
from queues.desk import Directory
from queues.models import AgentRow


def escalator(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "escalator", "agents", *args],
        env={**os.environ, "ESCALATOR_DATABASE_URL": database_url},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_agents_add_prints_a_working_token_once_and_stores_only_its_hash(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'desk.db'}"
    upgrade(url)
    added = escalator(
        url,
        "add",
        "ana",
        "--queues",
        "general,billing",
        "--skills",
        "billing, German",
        "--capacity",
        "chat=3,email=10",
        "--role",
        "lead",
    )
    assert added.returncode == 0, added.stderr
    token = added.stdout.strip()
    assert token.startswith("esk_") and len(token) > 40
    assert "shown once" in added.stderr
    engine = make_engine(url)
    try:
        directory = Directory(make_session_factory(engine))
        agent = directory.authenticate(token)
        assert agent is not None and agent.name == "ana" and agent.may_reassign
        assert agent.queues == {"general", "billing"}
        assert agent.skills == {"billing", "german"}
        assert (agent.capacity_for("chat"), agent.capacity_for("sms")) == (3, 5)
        with make_session_factory(engine)() as session:
            stored = session.scalars(select(AgentRow.token_hash)).one()
        assert token not in stored and len(stored) == 64
        rotated = escalator(url, "token", "ana")
        assert rotated.returncode == 0
        assert directory.authenticate(token) is None
        assert directory.authenticate(rotated.stdout.strip()) is not None
    finally:
        engine.dispose()
    listed = json.loads(escalator(url, "list", "--json").stdout)
    assert [(a["name"], a["role"], a["presence"]) for a in listed] == [("ana", "lead", "offline")]
    queue = escalator(url, "queue", "billing", "--strategy", "skills", "--accept-timeout", "30")
    assert json.loads(queue.stdout)["strategy"] == "skills"


def test_agents_refuses_bad_input_with_reasons(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'desk.db'}"
    upgrade(url)
    assert escalator(url, "add", "ana").returncode == 0
    again = escalator(url, "add", "ana")
    assert again.returncode == 2 and "exists already" in again.stderr
    bad_name = escalator(url, "add", "Ana Smith")
    assert bad_name.returncode == 2 and "lowercase" in bad_name.stderr
    bad_capacity = escalator(url, "add", "bo", "--capacity", "chat=lots")
    assert bad_capacity.returncode == 2 and "CHANNEL=N" in bad_capacity.stderr
    bad_strategy = escalator(url, "queue", "general", "--strategy", "random")
    assert bad_strategy.returncode == 2 and "round_robin" in bad_strategy.stderr
    missing = escalator(url, "token", "nobody")
    assert missing.returncode == 2 and "no agent 'nobody'" in missing.stderr
