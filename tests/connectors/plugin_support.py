"""Channel plugins for tests: routes and reply senders of the providers a test configures."""

from __future__ import annotations

import httpx
from fastapi import APIRouter
from pydantic_settings import BaseSettings

from connectors.channels import Inbound, MessageSink
from connectors.channels.registry import inbound_routers, provider_settings, reply_senders
from connectors.outbound.senders import ChannelSenders


def channel_routers(
    sink: MessageSink, max_body_bytes: int, **given: BaseSettings
) -> dict[str, APIRouter]:
    """The routes of every configured plugin: those `given` by name, the rest as the
    environment says (unset in tests: off). Signed timestamps may be 300 s off."""
    return inbound_routers(provider_settings(**given), Inbound(sink, max_body_bytes, 300))


def senders(client: httpx.Client, **given: BaseSettings) -> ChannelSenders:
    """The reply senders of the plugins `given` settings (the rest from the environment)."""
    return reply_senders(provider_settings(**given), client)
