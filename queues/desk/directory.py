"""Agents and queue settings: the desk's own rows (not projected from Kafka).

`escalator agents` and the desk API change them here; the assigner and the API read
them. Plain frozen dataclasses go out, never ORM rows.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session, sessionmaker

from queues.desk.tokens import new_token, token_hash
from queues.models import AgentRow, QueueMemberRow, QueueRow
from schemas import PresenceState

_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
DEFAULT_CAPACITY_KEY = "*"
"""Capacity key that applies to every channel without its own entry."""
DEFAULT_CAPACITY = 5
"""Open cases per channel an agent takes when nothing else is configured."""
SEEN_RESOLUTION = timedelta(minutes=1)
"""`last_seen_at` is written at most this often per agent (a write per request would not scale)."""


class Role(StrEnum):
    """What an agent may do: agents work their queues, leads reassign, admins see everything."""

    AGENT = "agent"
    LEAD = "lead"
    ADMIN = "admin"


Presence = PresenceState
"""Online agents get new cases, away agents keep theirs, offline agents give theirs back."""


class Strategy(StrEnum):
    """How the assigner picks an agent for a queue's next case."""

    ROUND_ROBIN = "round_robin"
    LEAST_LOADED = "least_loaded"
    SKILLS = "skills"


class Mode(StrEnum):
    """Push: Escalator assigns cases. Pull: agents claim the next case (or a chosen one)."""

    PUSH = "push"
    PULL = "pull"


class DirectoryError(ValueError):
    """A request the directory refuses, with the reason."""


@dataclass(frozen=True)
class Agent:
    """An agent as the desk sees them."""

    name: str
    role: Role
    skills: frozenset[str]
    capacity: Mapping[str, int]
    presence: Presence
    presence_at: datetime
    queues: frozenset[str] = field(default_factory=frozenset)
    last_seen_at: datetime | None = None
    heartbeat_at: datetime | None = None
    presence_id: str | None = None

    def capacity_for(self, channel: str | None) -> int:
        """Open cases this agent takes at once on `channel`."""
        if channel is not None and channel in self.capacity:
            return self.capacity[channel]
        return self.capacity.get(DEFAULT_CAPACITY_KEY, DEFAULT_CAPACITY)

    @property
    def may_reassign(self) -> bool:
        """Leads and admins may act on cases other agents own."""
        return self.role in (Role.LEAD, Role.ADMIN)

    def sees(self, queue: str | None) -> bool:
        """Admins see every queue; others only their own."""
        return self.role is Role.ADMIN or (queue is not None and queue in self.queues)

    def to_json(self) -> dict[str, object]:
        """A JSON-ready dict (no token: it is never stored)."""
        return {
            "name": self.name,
            "role": self.role.value,
            "skills": sorted(self.skills),
            "capacity": dict(self.capacity),
            "presence": self.presence.value,
            "presence_at": _iso(self.presence_at),
            "queues": sorted(self.queues),
            "last_seen_at": _iso(self.last_seen_at),
            "heartbeat_at": _iso(self.heartbeat_at),
        }


@dataclass(frozen=True)
class QueueSettings:
    """How one queue hands out its cases."""

    name: str
    strategy: Strategy
    mode: Mode
    skills: frozenset[str]
    accept_timeout_seconds: int

    def to_json(self) -> dict[str, object]:
        """A JSON-ready dict."""
        return {
            "name": self.name,
            "strategy": self.strategy.value,
            "mode": self.mode.value,
            "skills": sorted(self.skills),
            "accept_timeout_seconds": self.accept_timeout_seconds,
        }


def parse_capacity(spec: str) -> dict[str, int]:
    """Parse `chat=3,email=10,*=5` (or a bare number for every channel) into a mapping."""
    spec = spec.strip()
    if not spec:
        return {}
    if spec.isdigit():
        return {DEFAULT_CAPACITY_KEY: int(spec)}
    capacity: dict[str, int] = {}
    for part in spec.split(","):
        channel, sep, count = part.partition("=")
        channel, count = channel.strip(), count.strip()
        if not sep or not channel or not count.isdigit():
            raise DirectoryError(f"capacity {part!r}: use CHANNEL=N, e.g. chat=3,email=10")
        capacity[channel] = int(count)
    return capacity


def split_list(spec: str | Iterable[str] | None) -> list[str]:
    """`a,b, c` (or a list of such strings) as clean, lowercase, de-duplicated names."""
    if spec is None:
        return []
    parts = spec.split(",") if isinstance(spec, str) else [p for s in spec for p in s.split(",")]
    seen: list[str] = []
    for part in parts:
        name = part.strip().lower()
        if name and name not in seen:
            seen.append(name)
    return seen


class Directory:
    """Reads and writes agents, memberships and queue settings."""

    def __init__(self, session_factory: sessionmaker[Session]) -> None:
        self._sessions = session_factory

    def add_agent(
        self,
        name: str,
        *,
        role: Role = Role.AGENT,
        skills: Iterable[str] = (),
        queues: Iterable[str] = (),
        capacity: Mapping[str, int] | None = None,
        now: datetime | None = None,
    ) -> tuple[Agent, str]:
        """Create an agent (offline) and return it with its token, which is not stored."""
        if not _NAME.match(name):
            raise DirectoryError(
                f"agent name {name!r}: use lowercase letters, digits, '.', '_' or '-' (max 64)"
            )
        at = now or datetime.now(UTC)
        token = new_token()
        with self._sessions.begin() as session:
            if session.get(AgentRow, name) is not None:
                raise DirectoryError(f"agent {name!r} exists already")
            session.add(
                AgentRow(
                    name=name,
                    role=role.value,
                    skills=sorted(set(skills)),
                    capacity=dict(capacity or {DEFAULT_CAPACITY_KEY: DEFAULT_CAPACITY}),
                    presence=Presence.OFFLINE.value,
                    presence_at=at,
                    token_hash=token_hash(token),
                    created_at=at,
                    last_seen_at=None,
                )
            )
            session.flush()
            for queue in queues:
                _ensure_queue(session, queue, at)
                session.add(QueueMemberRow(queue=queue, agent=name))
        agent = self.agent(name)
        assert agent is not None
        return agent, token

    def rotate_token(self, name: str) -> str:
        """Replace an agent's token; the old one stops working at once."""
        token = new_token()
        with self._sessions.begin() as session:
            row = session.get(AgentRow, name)
            if row is None:
                raise DirectoryError(f"no agent {name!r}")
            row.token_hash = token_hash(token)
        return token

    def authenticate(self, token: str, *, now: datetime | None = None) -> Agent | None:
        """The agent whose token this is, or None; notes when the agent was last seen."""
        at = now or datetime.now(UTC)
        with self._sessions() as session:
            row = session.scalars(
                select(AgentRow).where(AgentRow.token_hash == token_hash(token))
            ).one_or_none()
            if row is None:
                return None
            if row.last_seen_at is None or at - row.last_seen_at >= SEEN_RESOLUTION:
                row.last_seen_at = at
                session.commit()
            return _agent(session, row)

    def agent(self, name: str) -> Agent | None:
        """One agent, or None."""
        with self._sessions() as session:
            row = session.get(AgentRow, name)
            return None if row is None else _agent(session, row)

    def agents(self, queue: str | None = None) -> list[Agent]:
        """Every agent (of one queue, if given), by name."""
        with self._sessions() as session:
            query = select(AgentRow).order_by(AgentRow.name)
            if queue is not None:
                query = query.join(QueueMemberRow, QueueMemberRow.agent == AgentRow.name).where(
                    QueueMemberRow.queue == queue
                )
            rows = list(session.scalars(query))
            memberships: dict[str, set[str]] = {row.name: set() for row in rows}
            found = session.execute(
                select(QueueMemberRow.agent, QueueMemberRow.queue).where(
                    QueueMemberRow.agent.in_(list(memberships))
                )
            )
            for agent, member_of in found:
                memberships[agent].add(member_of)
            return [_agent(session, row, memberships[row.name]) for row in rows]

    def set_presence(self, name: str, presence: Presence, *, now: datetime | None = None) -> Agent:
        """Write an agent's presence straight to the store, bypassing `agents.presence`.

        For seeding a store (tests, tools). The desk records every presence change as an
        `AgentPresence` record instead, which `queues.presence_projection` applies.
        """
        with self._sessions.begin() as session:
            row = session.get(AgentRow, name)
            if row is None:
                raise DirectoryError(f"no agent {name!r}")
            if row.presence != presence.value:
                row.presence = presence.value
                row.presence_at = now or datetime.now(UTC)
        agent = self.agent(name)
        assert agent is not None
        return agent

    def heartbeat(self, name: str, *, now: datetime | None = None) -> None:
        """Note that the agent's console or client is still there (presence stays as it is)."""
        with self._sessions.begin() as session:
            row = session.get(AgentRow, name)
            if row is not None:
                row.heartbeat_at = now or datetime.now(UTC)

    def heartbeat_many(self, names: Sequence[str], *, now: datetime | None = None) -> None:
        """`heartbeat` for several agents in one statement (the desk's event streams)."""
        if not names:
            return
        with self._sessions.begin() as session:
            session.execute(
                update(AgentRow)
                .where(AgentRow.name.in_(list(names)))
                .values(heartbeat_at=now or datetime.now(UTC))
            )

    def set_membership(self, name: str, queues: Iterable[str]) -> Agent:
        """Make the agent a member of exactly these queues."""
        at = datetime.now(UTC)
        with self._sessions.begin() as session:
            if session.get(AgentRow, name) is None:
                raise DirectoryError(f"no agent {name!r}")
            session.execute(delete(QueueMemberRow).where(QueueMemberRow.agent == name))
            for queue in queues:
                _ensure_queue(session, queue, at)
                session.add(QueueMemberRow(queue=queue, agent=name))
        agent = self.agent(name)
        assert agent is not None
        return agent

    def configure_queue(
        self,
        name: str,
        *,
        strategy: Strategy | None = None,
        mode: Mode | None = None,
        skills: Iterable[str] | None = None,
        accept_timeout_seconds: int | None = None,
    ) -> QueueSettings:
        """Create the queue if needed and change the given settings."""
        if accept_timeout_seconds is not None and accept_timeout_seconds < 1:
            raise DirectoryError("accept timeout must be at least 1 second")
        with self._sessions.begin() as session:
            row = _ensure_queue(session, name, datetime.now(UTC))
            if strategy is not None:
                row.strategy = strategy.value
            if mode is not None:
                row.mode = mode.value
            if skills is not None:
                row.skills = sorted(set(skills))
            if accept_timeout_seconds is not None:
                row.accept_timeout_seconds = accept_timeout_seconds
            session.flush()
            return _queue(row)

    def queue(self, name: str) -> QueueSettings | None:
        """One queue's settings, or None."""
        with self._sessions() as session:
            row = session.get(QueueRow, name)
            return None if row is None else _queue(row)

    def queues(self) -> list[QueueSettings]:
        """Every queue's settings, by name."""
        with self._sessions() as session:
            return [
                _queue(row) for row in session.scalars(select(QueueRow).order_by(QueueRow.name))
            ]


def _ensure_queue(session: Session, name: str, at: datetime) -> QueueRow:
    if not re.match(r"^[a-z0-9][a-z0-9_-]{0,99}$", name):
        raise DirectoryError(f"queue name {name!r}: use lowercase letters, digits, _ or -")
    row = session.get(QueueRow, name)
    if row is None:
        row = QueueRow(
            name=name,
            created_at=at,
            strategy=Strategy.LEAST_LOADED.value,
            mode=Mode.PUSH.value,
            skills=[],
            accept_timeout_seconds=120,
        )
        session.add(row)
        session.flush()
    return row


def _agent(session: Session, row: AgentRow, queues: Iterable[str] | None = None) -> Agent:
    if queues is None:
        queues = session.scalars(
            select(QueueMemberRow.queue).where(QueueMemberRow.agent == row.name)
        )
    return Agent(
        name=row.name,
        role=Role(row.role),
        skills=frozenset(row.skills),
        capacity={str(k): int(v) for k, v in row.capacity.items()},
        presence=Presence(row.presence),
        presence_at=row.presence_at,
        queues=frozenset(queues),
        last_seen_at=row.last_seen_at,
        heartbeat_at=row.heartbeat_at,
        presence_id=row.presence_id,
    )


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _queue(row: QueueRow) -> QueueSettings:
    return QueueSettings(
        name=row.name,
        strategy=Strategy(row.strategy),
        mode=Mode(row.mode),
        skills=frozenset(row.skills),
        accept_timeout_seconds=row.accept_timeout_seconds,
    )
