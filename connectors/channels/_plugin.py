"""The shape of a channel plugin: one external system's settings, webhook, reply sender, channels.

A provider module (`connectors/channels/<provider>.py`, or a small package such as
`connectors/email/`) ends with one `ChannelPlugin` naming:

- `settings`: ONE pydantic-settings class for that external system, inbound and outbound
  (`ESCALATOR_<PROVIDER>_*`), read once by the process that needs it;
- `inbound`: its webhook routes, or None while its secret is unset (the path then answers 404);
- `outbound`: its reply sender, or None when replies on its channels go to the reply webhook;
- `channels`: the message channels it publishes and answers on. What those channels *are*
  (label, icon, traits such as `public_thread`) is a row of `schemas.channels`, on the bottom
  floor, because the stream and the desk read it and may not import `connectors/`.

`connectors.channels.registry.PLUGINS` lists every plugin; nothing else names providers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

import httpx
from fastapi import APIRouter
from pydantic_settings import BaseSettings

from connectors.channels._http import MessageSink
from connectors.outbound._model import Reply


class ConfigurationError(ValueError):
    """A provider configured by half (a secret without what it needs): refused at start."""


@dataclass(frozen=True)
class Inbound:
    """What every provider's webhook is built with."""

    sink: MessageSink
    max_body_bytes: int
    tolerance_seconds: int = 300
    """How far a signed timestamp may be from now (`ESCALATOR_WEBHOOK_TOLERANCE_SECONDS`)."""


class Sender(Protocol):
    """Delivers a reply on the provider's channels, or raises `DeliveryError`."""

    def send(self, reply: Reply) -> None:
        """Deliver one reply or raise DeliveryError."""


SettingsT = TypeVar("SettingsT", bound=BaseSettings)


@dataclass(frozen=True)
class ChannelPlugin(Generic[SettingsT]):
    """One external system as Escalator sees it (see the module docstring)."""

    name: str
    """The provider's name: the key of its settings and routers, the `channel` label of its
    webhook's metrics (`twilio`, `meta`, …)."""
    channels: tuple[str, ...]
    """The message channels it publishes and answers on (rows of `schemas.channels`)."""
    settings: type[SettingsT]
    inbound: Callable[[SettingsT, Inbound], APIRouter | None]
    outbound: Callable[[SettingsT, httpx.Client], Sender | None]
    answers_other_channels: bool = False
    """Its sender also takes the replies no other plugin answers (the generic reply webhook)."""


class HttpSender(Generic[SettingsT]):
    """Base of a provider's reply sender: its settings and the shared HTTP client."""

    def __init__(self, settings: SettingsT, client: httpx.Client) -> None:
        self.settings = settings
        self.client = client
