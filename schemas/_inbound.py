"""The inbound message contract: what every connector (ours or a user's) publishes."""

from __future__ import annotations

from typing import Any

from pydantic import AwareDatetime, ConfigDict, Field, field_validator

from schemas._common import ChannelName, Contract, NonEmptyText

MAX_TEXT_LENGTH = 100_000
"""Longest message body accepted, in characters; longer bodies belong in an attachment."""


class CustomerAttributes(Contract):
    """What the channel or the company already knows about the sender."""

    model_config = ConfigDict(extra="allow")

    id: NonEmptyText | None = None
    tier: str | None = None
    email: str | None = None
    phone: str | None = None
    name: str | None = None
    verified: list[str] = Field(
        default_factory=list,
        description="Which of the attributes the channel verified, e.g. ['email'].",
    )


class Attachment(Contract):
    """Metadata of one attachment; the bytes stay with the channel."""

    filename: str
    content_type: str = "application/octet-stream"
    size: int | None = Field(default=None, ge=0)
    url: str | None = None


class InboundMessage(Contract):
    """One customer message on `messages.inbound`, keyed by `sender`.

    `channel` + `external_id` is the idempotency key: the same pair is one message,
    however often it is delivered.
    """

    channel: ChannelName
    external_id: NonEmptyText
    sender: NonEmptyText
    text: str = Field(max_length=MAX_TEXT_LENGTH)
    sent_at: AwareDatetime
    subject: str | None = Field(default=None, max_length=2_000)
    thread_ref: str | None = Field(default=None, max_length=1_024)
    in_reply_to: str | None = Field(default=None, max_length=1_024)
    language: str | None = Field(default=None, max_length=35)
    customer: CustomerAttributes = Field(default_factory=CustomerAttributes)
    attachments: list[Attachment] = Field(default_factory=list)
    metadata: dict[str, Any] = Field(default_factory=dict)

    @field_validator("channel", mode="before")
    @classmethod
    def _lowercase_channel(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

    @property
    def message_key(self) -> str:
        """The idempotency key, `channel:external_id`."""
        return f"{self.channel}:{self.external_id}"
