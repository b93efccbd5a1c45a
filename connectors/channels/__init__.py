"""Channel plugins: one module per provider (webhook in, replies out), listed in `registry`.

A channel whose secret is not configured is not mounted at all, so its path answers 404 and
nothing ever runs unauthenticated. See `_plugin` for the shape of a plugin.
"""

from __future__ import annotations

from connectors.channels._http import MessageSink
from connectors.channels._plugin import ChannelPlugin, ConfigurationError, Inbound
from connectors.channels._replay import DeliveryMemory, ReplayCache
from connectors.channels._replay_shared import SharedReplayCache

__all__ = [
    "ChannelPlugin",
    "ConfigurationError",
    "DeliveryMemory",
    "Inbound",
    "MessageSink",
    "ReplayCache",
    "SharedReplayCache",
]
