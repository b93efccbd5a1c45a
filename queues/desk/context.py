"""What the desk's routes share: the directory, the reads and the action gateway."""

from __future__ import annotations

from dataclasses import dataclass, field

from fastapi import Request

from queues.desk.directory import Directory
from queues.desk.feed import ChangeFeed
from queues.desk.gateway import ActionGateway
from queues.desk.reads import DeskReads


@dataclass
class DeskContext:
    """The desk's collaborators, kept on `app.state.desk`."""

    directory: Directory
    reads: DeskReads
    gateway: ActionGateway
    events_poll_seconds: float = 0.25
    events_keepalive_seconds: float = 15.0
    presence_timeout_seconds: float = 90.0
    feed: ChangeFeed = field(init=False)

    def __post_init__(self) -> None:
        # one store poller per process, shared by every /v1/events stream (queues.desk.feed)
        self.feed = ChangeFeed(
            self.reads,
            self.directory.heartbeat_many,
            self.events_poll_seconds,
            self.events_keepalive_seconds,
        )


def desk(request: Request) -> DeskContext:
    """The desk context of the app serving `request`."""
    context: DeskContext = request.app.state.desk
    return context
