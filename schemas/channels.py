"""What each channel *is*, as data every floor may read: its label, its icon and its traits.

A provider plugin (`connectors/channels/<provider>.py`) owns how a channel is reached (its
settings, webhook and reply sender). What a channel's messages *mean* belongs here instead,
on the bottom floor, because the stream (`streams/`) and the desk (`queues/`) need it and may
not import `connectors/`: the stream threads a forum post into its topic's case because the
channel's traits say `public_thread`, not because its name is `community`.

The table is static on purpose. The stream's decisions must not depend on which connectors a
deployment happens to run, or a replay on another worker would decide differently; a row here
is the same for every process. A channel missing from the table is still valid (the contract's
`channel` field is open): it gets `DEFAULT_TRAITS`, its name as label and a generic icon, and
metrics count it as `other`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType


@dataclass(frozen=True)
class ChannelTraits:
    """One channel's description: how people see it and what its messages mean to the stream."""

    label: str
    """How the channel is written for people (`Email`, `SMS`, `Community`)."""
    icon: str = ""
    """The inner SVG (24x24 view box, stroked) of its icon; empty: the generic one."""
    public_thread: bool = False
    """A thread is a public place many people write in (a forum topic): every message of a
    `thread_ref` belongs to that thread's one case, whoever wrote it, and only the message
    that starts the thread (`metadata.kind: topic`) makes the writer its owner."""
    staff_answers: bool = False
    """Answers are given on the channel itself: a message tagged `metadata.staff` or
    `metadata.accepted_answer` is an answer (it meets the SLA clocks, never opens a case and is
    never sent anywhere), not a customer contact."""
    phone_numbers: bool = False
    """Senders are phone numbers: their handle is `phone:<E.164>`, shared across such channels."""


DEFAULT_TRAITS = ChannelTraits(label="")
"""The traits of a channel the table does not list: private threads, no staff answers."""

_CHANNELS: dict[str, ChannelTraits] = {
    # an envelope
    "email": ChannelTraits(
        "Email", '<rect x="3" y="5" width="18" height="14" rx="2"/><path d="M3 7l9 6 9-6"/>'
    ),
    # a phone with a speech line
    "sms": ChannelTraits(
        "SMS",
        '<rect x="7" y="2" width="10" height="20" rx="2"/><path d="M10 18h4"/>',
        phone_numbers=True,
    ),
    # a phone in a speech bubble
    "whatsapp": ChannelTraits(
        "WhatsApp",
        '<path d="M4 20l1.5-4A8 8 0 1 1 8 18.5z"/><path d="M9 9c0 3 3 6 6 6l1-1.5-2-1-1 1'
        '-2.5-2.5 1-1-1-2z"/>',
        phone_numbers=True,
    ),
    # a speech bubble
    "chat": ChannelTraits("Chat", '<path d="M4 5h16v10H9l-5 4z"/>'),
    # a form with lines
    "webform": ChannelTraits(
        "Web form",
        '<rect x="4" y="3" width="16" height="18" rx="1"/><path d="M8 8h8M8 12h8M8 16h5"/>',
    ),
    # a bird-like chevron for the social network
    "twitter": ChannelTraits("Twitter", '<path d="M4 6l7 6-7 6M13 18h7"/>'),
    # a rounded square with an f
    "facebook": ChannelTraits(
        "Facebook",
        '<rect x="3" y="3" width="18" height="18" rx="4"/><path d="M14 8h-2v12M10 12h6"/>',
    ),
    # a camera: a rounded square with a lens
    "instagram": ChannelTraits(
        "Instagram",
        '<rect x="3" y="3" width="18" height="18" rx="5"/><circle cx="12" cy="12" r="4"/>',
    ),
    # two bubbles: a forum
    "community": ChannelTraits(
        "Community",
        '<path d="M3 4h12v8H7l-4 3z"/><path d="M9 14h8l4 3v-9h-3"/>',
        public_thread=True,
        staff_answers=True,
    ),
    # a hash
    "slack": ChannelTraits("Slack", '<path d="M9 3v18M15 3v18M3 9h18M3 15h18"/>'),
    # a handset
    "voice": ChannelTraits(
        "Voice",
        '<path d="M6 3l3 4-2 2c1 3 4 6 7 7l2-2 4 3-2 4C10 21 3 14 3 5z"/>',
        phone_numbers=True,
    ),
}

CHANNELS: Mapping[str, ChannelTraits] = MappingProxyType(_CHANNELS)
"""Every channel Escalator's own connectors produce, with its traits."""


def channel_traits(channel: str | None) -> ChannelTraits:
    """The channel's row of the table; `DEFAULT_TRAITS` (labelled by its name) for others."""
    found = CHANNELS.get(channel or "")
    if found is not None:
        return found
    return ChannelTraits(label=channel or "Unknown channel")
