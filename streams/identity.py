"""Identity resolution for stage A: which customer wrote a message, on what evidence.

A message is known by its handles: the channel handle (an email address on `email`, the
phone in E.164 on channels whose traits say `phone_numbers` — `sms`, `whatsapp`, `voice` —,
`<channel>:<id>` elsewhere) and the email address or phone its channel *verified* (listed in
`customer.verified`). Handles are linked to one customer only on that strong evidence, or by
an operator's merge; never on a name or a guess. A link, once made, is never moved
automatically: a conflicting verified attribute is recorded as evidence and left for an
operator (`escalator customers merge`).

Mail is judged by its authentication: a mail's sender handle follows (and makes) links only
when Escalator's mail connector verified the address (`customer.verified` lists `email`,
set only when DMARC passed for its From domain), unless `mail_links_require_dmarc` is off.
Any other mail stays with its handle's own customer, so a spoofed `From` cannot reach the
cases of a customer whose address was linked.

The decisions live on the compacted `customers.identity` topic (see `schemas.IdentityRecord`);
every worker holds the whole directory in memory and follows the topic.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

import phonenumbers

from schemas import IdentityKind, IdentityRecord, InboundMessage, channel_traits
from schemas.ids import customer_id_for_handle

log = logging.getLogger(__name__)

DEFAULT_VERIFIED_CHANNELS = frozenset({"chat", "webform"})
"""Channels whose `customer.verified` is believed by default (`ESCALATOR_VERIFIED_CHANNELS`).

These arrive through the signed generic webhook from the company's own systems (a logged-in
web chat, an account form). Escalator's provider connectors (email, SMS, Slack, social,
forum) never set `verified`: what a sender writes there proves nothing.
"""


def normalise_phone(raw: str, default_region: str | None = None) -> str | None:
    """The number in E.164 (`+4915123456789`), or None if it is not a possible number.

    Numbers without a country code are read in `default_region` (e.g. `DE`); without a
    region only international numbers parse.
    """
    text = raw.strip()
    if text.startswith("whatsapp:"):
        text = text.removeprefix("whatsapp:")
    try:
        number = phonenumbers.parse(text, default_region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalise_email(raw: str) -> str | None:
    """The address case-folded and trimmed, or None if it is not an address."""
    address = raw.strip().strip("<>").casefold()
    local, at, domain = address.rpartition("@")
    return address if at and local and domain and " " not in address else None


def channel_handle(message: InboundMessage, default_region: str | None = None) -> str:
    """The handle the channel knows the sender by, normalised (`email:…`, `phone:…`, …)."""
    if message.channel == "email":
        email = normalise_email(message.sender)
        if email:
            return f"email:{email}"
    if channel_traits(message.channel).phone_numbers:
        phone = normalise_phone(message.sender, default_region)
        if phone:
            return f"phone:{phone}"
    return f"{message.channel}:{message.sender.strip().casefold()}"


def verified_handles(
    message: InboundMessage,
    default_region: str | None = None,
    verified_channels: frozenset[str] = DEFAULT_VERIFIED_CHANNELS,
) -> list[str]:
    """The email and phone the channel verified for the sender (`customer.verified`).

    Only believed from `verified_channels`; from any other channel the list is ignored.
    """
    if message.channel not in verified_channels:
        return []
    customer = message.customer
    verified = {item.strip().lower() for item in customer.verified}
    handles: list[str] = []
    if "email" in verified and customer.email:
        email = normalise_email(customer.email)
        if email:
            handles.append(f"email:{email}")
    if "phone" in verified and customer.phone:
        phone = normalise_phone(customer.phone, default_region)
        if phone:
            handles.append(f"phone:{phone}")
    return handles


def mail_address_verified(message: InboundMessage) -> bool:
    """Whether a mail's sender address was verified (DMARC passed for its From domain)."""
    customer = message.customer
    verified = {item.strip().lower() for item in customer.verified}
    return (
        "email" in verified
        and customer.email is not None
        and normalise_email(customer.email) == normalise_email(message.sender)
    )


def implicit_customer(handle: str) -> str:
    """The customer id a handle has before anything links it (stable, derived from it)."""
    kind, _, value = handle.partition(":")
    return customer_id_for_handle(kind, value)


@dataclass(frozen=True)
class Resolution:
    """The customer of a message, the evidence in words, and the new links it made."""

    customer_id: str
    evidence: str
    records: list[IdentityRecord] = field(default_factory=list)


class IdentityDirectory:
    """Every handle link and merge, in memory; fed by the identity topic and by `resolve`."""

    def __init__(
        self,
        default_region: str | None = None,
        worker: str = "escalator-worker",
        verified_channels: frozenset[str] = DEFAULT_VERIFIED_CHANNELS,
        mail_links_require_dmarc: bool = True,
    ):
        self.default_region = default_region
        self.worker = worker
        self.verified_channels = verified_channels
        self.mail_links_require_dmarc = mail_links_require_dmarc
        self.links: dict[str, tuple[str, str]] = {}
        self.merges: dict[str, tuple[str, str]] = {}

    def apply(self, record: IdentityRecord) -> None:
        """Take one decision from the topic (or just made); applying it twice is harmless."""
        if record.kind is IdentityKind.LINK and record.handle:
            self.links[record.handle] = (record.customer_id, record.reason)
        elif record.kind is IdentityKind.MERGE and record.merged_into:
            self.merges[record.customer_id] = (record.merged_into, record.reason)
        elif record.kind is IdentityKind.SPLIT:
            self.merges.pop(record.customer_id, None)

    def apply_all(self, records: Iterable[IdentityRecord]) -> None:
        """Take several decisions in order."""
        for record in records:
            self.apply(record)

    def merged(self, customer_id: str) -> tuple[str, list[str]]:
        """Follow merges to the customer that stands; the reasons on the way."""
        seen = {customer_id}
        reasons: list[str] = []
        while customer_id in self.merges:
            target, reason = self.merges[customer_id]
            if target in seen:  # a cycle of merges: stop where it closes
                break
            reasons.append(f"{customer_id} merged into {target} ({reason})")
            seen.add(target)
            customer_id = target
        return customer_id, reasons

    def resolve(self, message: InboundMessage, at: datetime) -> Resolution:
        """Decide the customer of a message; new links are applied here and returned."""
        region = self.default_region
        own = channel_handle(message, region)
        verified = verified_handles(message, region, self.verified_channels)
        if (
            self.mail_links_require_dmarc
            and message.channel == "email"
            and not message.customer.id
            and not mail_address_verified(message)
        ):
            final, merges = self.merged(implicit_customer(own))
            evidence = f"handle {own} (mail not authenticated by DMARC: its links are not followed)"
            return Resolution(customer_id=final, evidence="; ".join([evidence, *merges]))
        handles = [*verified, *(h for h in [own] if h not in verified)]
        base, evidence = self._base(message, handles, own)
        records: list[IdentityRecord] = []
        notes: list[str] = []
        linkable = [*verified, own]
        for handle in dict.fromkeys(linkable):
            known = self.links.get(handle)
            if known is not None:
                if known[0] != base:
                    notes.append(f"{handle} stays with {known[0]} (no automatic merge)")
                continue
            if implicit_customer(handle) == base:
                continue
            why = "verified by the channel" if handle in verified else "sender of the message"
            record = IdentityRecord(
                kind=IdentityKind.LINK,
                customer_id=base,
                handle=handle,
                reason=f"{handle} {why} of a {message.channel} message from {own}",
                evidence=f"{message.message_key}: {evidence}",
                by=self.worker,
                at=at,
            )
            self.apply(record)
            records.append(record)
            notes.append(f"linked {handle}")
        final, merges = self.merged(base)
        parts = [evidence, *notes, *merges]
        return Resolution(customer_id=final, evidence="; ".join(parts), records=records)

    def _base(self, message: InboundMessage, handles: list[str], own: str) -> tuple[str, str]:
        """The customer before merges: a supplied id, else the strongest handle's customer.

        Strongest first: the verified email, the verified phone, the channel handle.
        """
        if message.customer.id:
            return message.customer.id, "customer.id supplied by the channel"
        first = handles[0] if handles else own
        source = "verified " if first != own else ""
        known = self.links.get(first)
        if known is not None:
            return known[0], f"{source}{first} is linked to {known[0]} ({known[1]})"
        return implicit_customer(first), f"{source}handle {first}"
