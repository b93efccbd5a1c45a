"""The demo's desk: an agent and a lead who can log in to the console straight away."""

from __future__ import annotations

from dataclasses import dataclass

from queues import make_engine, make_session_factory
from queues.desk import Directory, Role


@dataclass(frozen=True)
class DemoLogin:
    """Who can log in, as what, and with which token (shown once, like `agents add`)."""

    name: str
    role: Role
    token: str


def create_demo_logins(database_url: str, queues: list[str]) -> list[DemoLogin]:
    """Add `demo-agent` (the first queues) and `demo-lead` (every queue) to the case store."""
    engine = make_engine(database_url)
    try:
        directory = Directory(make_session_factory(engine))
        wanted = [
            ("demo-agent", Role.AGENT, queues[:3]),
            ("demo-lead", Role.LEAD, queues),
        ]
        logins = []
        for name, role, member_of in wanted:
            _agent, token = directory.add_agent(name, role=role, queues=member_of)
            logins.append(DemoLogin(name, role, token))
        return logins
    finally:
        engine.dispose()
