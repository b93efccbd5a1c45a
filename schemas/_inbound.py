"""The inbound message contract: what every connector (ours or a user's) publishes.

Every field is bounded (see `schemas.limits`), so a valid message always fits a Kafka record
and every stage after the edge can parse and store it.
"""

from __future__ import annotations

from typing import Any

from pydantic import AwareDatetime, ConfigDict, Field, field_validator, model_validator

from schemas._common import ChannelName, Contract, NonEmptyText
from schemas.limits import (
    MAX_ATTACHMENT_SIZE,
    MAX_ATTACHMENTS,
    MAX_ATTRIBUTE_LENGTH,
    MAX_CONTENT_TYPE_LENGTH,
    MAX_CUSTOMER_BYTES,
    MAX_ID_LENGTH,
    MAX_METADATA_BYTES,
    MAX_NESTING_DEPTH,
    MAX_RECIPIENTS,
    MAX_SUBJECT_FULL_LENGTH,
    MAX_SUBJECT_LENGTH,
    MAX_TEXT_LENGTH,
    MAX_URL_LENGTH,
    check_json_bounds,
    json_size,
    nesting_depth,
)

__all__ = [
    "MAX_TEXT_LENGTH",
    "RECIPIENT_FIELDS",
    "Attachment",
    "CustomerAttributes",
    "InboundMessage",
]

RECIPIENT_FIELDS = ("to", "cc", "bcc", "envelope_recipients")
"""Metadata keys that list recipients; each holds at most `MAX_RECIPIENTS` addresses."""

_SUBJECT_CUT_MARK = "…"


class CustomerAttributes(Contract):
    """What the channel or the company already knows about the sender.

    Further attributes are allowed; all of them together nest at most `MAX_NESTING_DEPTH`
    levels and take at most `MAX_CUSTOMER_BYTES` as JSON.
    """

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={"x-max-depth": MAX_NESTING_DEPTH, "x-max-bytes": MAX_CUSTOMER_BYTES},
    )

    id: NonEmptyText | None = None
    tier: str | None = Field(default=None, max_length=MAX_ATTRIBUTE_LENGTH)
    email: str | None = Field(default=None, max_length=MAX_ATTRIBUTE_LENGTH)
    phone: str | None = Field(default=None, max_length=MAX_ATTRIBUTE_LENGTH)
    name: str | None = Field(default=None, max_length=MAX_ATTRIBUTE_LENGTH)
    verified: list[str] = Field(
        default_factory=list,
        max_length=16,
        description="Which of the attributes the channel verified, e.g. ['email'].",
    )

    @model_validator(mode="after")
    def _bounded(self) -> CustomerAttributes:
        # the depth first, on the raw extras: only a shallow value may be serialised
        if nesting_depth(self.__pydantic_extra__ or {}, MAX_NESTING_DEPTH) > MAX_NESTING_DEPTH:
            raise ValueError(f"customer attributes nested more than {MAX_NESTING_DEPTH} levels")
        size = json_size(self)
        if size > MAX_CUSTOMER_BYTES:
            raise ValueError(f"at most {MAX_CUSTOMER_BYTES} bytes as JSON (this is {size})")
        return self


class Attachment(Contract):
    """Metadata of one attachment; the bytes stay with the channel."""

    filename: str = Field(max_length=MAX_ATTRIBUTE_LENGTH)
    content_type: str = Field(
        default="application/octet-stream", max_length=MAX_CONTENT_TYPE_LENGTH
    )
    size: int | None = Field(default=None, ge=0, le=MAX_ATTACHMENT_SIZE)
    url: str | None = Field(default=None, max_length=MAX_URL_LENGTH)


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
    subject: str | None = Field(
        default=None,
        max_length=MAX_SUBJECT_LENGTH,
        description=f"A longer subject is cut to {MAX_SUBJECT_LENGTH} characters (ending in "
        f"'{_SUBJECT_CUT_MARK}') and kept whole in `subject_full`.",
    )
    subject_full: str | None = Field(
        default=None,
        max_length=MAX_SUBJECT_FULL_LENGTH,
        description="The whole subject, when `subject` had to be cut; absent otherwise.",
    )
    thread_ref: str | None = Field(default=None, max_length=MAX_ID_LENGTH)
    in_reply_to: str | None = Field(default=None, max_length=MAX_ID_LENGTH)
    language: str | None = Field(default=None, max_length=35)
    customer: CustomerAttributes = Field(default_factory=CustomerAttributes)
    attachments: list[Attachment] = Field(default_factory=list, max_length=MAX_ATTACHMENTS)
    metadata: dict[str, Any] = Field(
        default_factory=dict,
        description=f"Free-form channel details: at most {MAX_NESTING_DEPTH} levels deep and "
        f"{MAX_METADATA_BYTES} bytes as JSON; the recipient lists "
        f"({', '.join(RECIPIENT_FIELDS)}) hold at most {MAX_RECIPIENTS} entries each.",
        json_schema_extra={"x-max-depth": MAX_NESTING_DEPTH, "x-max-bytes": MAX_METADATA_BYTES},
    )

    @model_validator(mode="before")
    @classmethod
    def _cut_long_subject(cls, data: Any) -> Any:
        """Cut an over-long subject to the bound; keep the whole of it in `subject_full`."""
        if not isinstance(data, dict):
            return data
        subject = data.get("subject")
        if not isinstance(subject, str) or len(subject) <= MAX_SUBJECT_LENGTH:
            return data
        if len(subject) > MAX_SUBJECT_FULL_LENGTH:
            raise ValueError(
                f"the subject has {len(subject)} characters; at most {MAX_SUBJECT_FULL_LENGTH} "
                f"are kept (over {MAX_SUBJECT_LENGTH} it is cut and kept whole in subject_full)"
            )
        cut = {**data, "subject": subject[: MAX_SUBJECT_LENGTH - 1] + _SUBJECT_CUT_MARK}
        if cut.get("subject_full") is None:
            cut["subject_full"] = subject
        return cut

    @field_validator("channel", mode="before")
    @classmethod
    def _lowercase_channel(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("metadata")
    @classmethod
    def _bounded_metadata(cls, value: dict[str, Any]) -> dict[str, Any]:
        check_json_bounds(value, MAX_NESTING_DEPTH, MAX_METADATA_BYTES)
        for name in RECIPIENT_FIELDS:
            listed = value.get(name)
            if isinstance(listed, list) and len(listed) > MAX_RECIPIENTS:
                raise ValueError(
                    f"`{name}` lists {len(listed)} recipients; at most {MAX_RECIPIENTS}"
                )
        return value

    @property
    def message_key(self) -> str:
        """The idempotency key, `channel:external_id`."""
        return f"{self.channel}:{self.external_id}"
