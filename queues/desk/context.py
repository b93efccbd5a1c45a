"""What the desk's routes share: the directory, the reads and the action gateway."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from queues.desk.directory import Directory
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


def desk(request: Request) -> DeskContext:
    """The desk context of the app serving `request`."""
    context: DeskContext = request.app.state.desk
    return context
