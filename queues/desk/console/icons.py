"""Channel icons: small inline SVGs (no icon font, nothing fetched), always beside a label.

The SVG is decorative (`aria-hidden`); the channel's name is written next to it, so a
screen reader or a user who does not know the picture still reads which channel it is.
Icons and labels are the channels' own, from the table in `schemas.channels`.
"""

from __future__ import annotations

from markupsafe import Markup

from schemas import CHANNELS, channel_traits

_OTHER = '<circle cx="12" cy="12" r="8"/><path d="M12 8v5M12 16v.5"/>'

CHANNEL_LABELS = {name: traits.label for name, traits in CHANNELS.items()}
"""How each known channel is written; others are shown by their name."""


def channel_label(channel: str | None) -> str:
    """The channel's name in words."""
    if not channel:
        return "Unknown channel"
    return channel_traits(channel).label


def channel_icon(channel: str | None) -> Markup:
    """The channel's icon and its label, as safe HTML for a template."""
    paths = channel_traits(channel).icon or _OTHER
    name = Markup.escape(channel or "unknown")
    label = Markup.escape(channel_label(channel))
    return Markup(
        f'<span class="channel channel-{name}">'
        f'<svg class="icon" viewBox="0 0 24 24" aria-hidden="true" focusable="false">{paths}</svg>'
        f'<span class="channel-name">{label}</span></span>'
    )
