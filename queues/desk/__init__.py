"""The desk: the agent API (FastAPI), its auth, the assigner and the agent directory."""

from queues.desk.app import create_desk_app
from queues.desk.directory import (
    Agent,
    Directory,
    DirectoryError,
    Mode,
    Presence,
    QueueSettings,
    Role,
    Strategy,
)

__all__ = [
    "Agent",
    "Directory",
    "DirectoryError",
    "Mode",
    "Presence",
    "QueueSettings",
    "Role",
    "Strategy",
    "create_desk_app",
]
