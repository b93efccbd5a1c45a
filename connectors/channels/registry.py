"""The registry of channel plugins: the one list that names every provider.

`PLUGINS` is all there is to know about which providers exist. The ingress mounts the
webhook of every plugin whose secret is set (`inbound_routers`); the reply service gives each
channel the sender of the plugin that carries it (`reply_senders`), and the channels nobody
answers to the plugin that `answers_other_channels` (the generic reply webhook). A provider
is added by writing its module (see docs/channels.md, "Adding a channel") and listing its
`PLUGIN` here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx
from fastapi import APIRouter
from pydantic_settings import BaseSettings

from connectors.channels import discourse, meta, slack, twilio, webhook, x
from connectors.channels._plugin import ChannelPlugin, Inbound
from connectors.email import plugin as email
from connectors.outbound.senders import ChannelSenders, ReplySender

PLUGINS: tuple[ChannelPlugin[Any], ...] = (
    twilio.PLUGIN,
    slack.PLUGIN,
    meta.PLUGIN,
    x.PLUGIN,
    discourse.PLUGIN,
    webhook.PLUGIN,
    email.PLUGIN,
)
"""Every channel plugin, in the order their routes are mounted."""

ProviderSettings = Mapping[str, BaseSettings]
"""Each plugin's settings, by plugin name."""


def plugin(name: str) -> ChannelPlugin[Any]:
    """The plugin called `name` (KeyError for an unknown one)."""
    for candidate in PLUGINS:
        if candidate.name == name:
            return candidate
    raise KeyError(name)


def provider_settings(**given: BaseSettings) -> dict[str, BaseSettings]:
    """Every plugin's settings: those `given` by plugin name, the others read from `ESCALATOR_*`.

    Raises pydantic's ValidationError for a value that is not valid, so a process refuses to
    start rather than run half-configured.
    """
    unknown = set(given) - {p.name for p in PLUGINS}
    if unknown:
        raise KeyError(f"no channel plugin called {sorted(unknown)}")
    return {p.name: given.get(p.name) or p.settings() for p in PLUGINS}


def inbound_routers(settings: ProviderSettings, inbound: Inbound) -> dict[str, APIRouter]:
    """The routes of every plugin whose webhook is configured, by plugin name.

    Raises ConfigurationError for a provider configured by half.
    """
    routers: dict[str, APIRouter] = {}
    for each in PLUGINS:
        router = each.inbound(settings[each.name], inbound)
        if router is not None:
            routers[each.name] = router
    return routers


def reply_senders(settings: ProviderSettings, client: httpx.Client) -> ChannelSenders:
    """The reply sender of every channel, and the fallback for the channels nobody answers."""
    by_channel: dict[str, ReplySender] = {}
    fallback: ReplySender | None = None
    for each in PLUGINS:
        sender = each.outbound(settings[each.name], client)
        if sender is None:
            continue  # not configured: its channels' replies go to the fallback
        for channel in each.channels:
            by_channel[channel] = sender
        if each.answers_other_channels:
            fallback = sender
    return ChannelSenders(by_channel, fallback)
