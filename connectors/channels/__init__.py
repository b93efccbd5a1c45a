"""Channel webhooks: one module per provider, each verifying, normalising and publishing.

`channel_routers` builds the routes of every channel whose secret is configured; a channel
without its secret is not mounted at all, so its path answers 404 and nothing ever runs
unauthenticated.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import APIRouter

from connectors.channels import discourse, meta, slack, twilio, webhook, x
from connectors.channels._http import MessageSink
from connectors.channels._replay import ReplayCache
from connectors.channels._signing import DEFAULT_TOLERANCE_SECONDS
from connectors.email import webhook as email_webhook
from connectors.email.auth import MailAuthenticator

__all__ = ["ChannelConfig", "MessageSink", "ReplayCache", "channel_routers"]


@dataclass(frozen=True)
class ChannelConfig:
    """The secrets of each channel (None: channel off) and shared webhook settings."""

    twilio_auth_token: str | None = None
    public_url: str | None = None
    slack_signing_secret: str | None = None
    meta_app_secret: str | None = None
    meta_verify_token: str | None = None
    x_consumer_secret: str | None = None
    discourse_secret: str | None = None
    discourse_api_username: str | None = None
    webhook_secret: str | None = None
    email_webhook_secret: str | None = None
    tolerance_seconds: int = DEFAULT_TOLERANCE_SECONDS
    email_authenticator: MailAuthenticator | None = None
    """SPF/DKIM/DMARC for the inbound-parse webhook's mail (None: not evaluated)."""


def channel_routers(
    config: ChannelConfig, sink: MessageSink, max_body_bytes: int
) -> dict[str, APIRouter]:
    """The router of every configured channel, by channel name."""
    routers: dict[str, APIRouter] = {}
    if config.twilio_auth_token and config.public_url:
        routers["twilio"] = twilio.router(
            config.twilio_auth_token, config.public_url, sink, max_body_bytes
        )
    if config.slack_signing_secret:
        routers["slack"] = slack.router(config.slack_signing_secret, sink, max_body_bytes)
    if config.meta_app_secret and config.meta_verify_token:
        routers["meta"] = meta.router(
            config.meta_app_secret, config.meta_verify_token, sink, max_body_bytes
        )
    if config.x_consumer_secret:
        routers["x"] = x.router(config.x_consumer_secret, sink, max_body_bytes)
    if config.discourse_secret:
        routers["discourse"] = discourse.router(
            config.discourse_secret, sink, max_body_bytes, config.discourse_api_username
        )
    if config.webhook_secret:
        routers["webhook"] = webhook.router(
            config.webhook_secret, config.tolerance_seconds, sink, max_body_bytes
        )
    if config.email_webhook_secret:
        routers["email"] = email_webhook.router(
            config.email_webhook_secret,
            config.tolerance_seconds,
            sink,
            max_body_bytes,
            authenticator=config.email_authenticator,
        )
    return routers
