"""Channel icons: small inline SVGs (no icon font, nothing fetched), always beside a label.

The SVG is decorative (`aria-hidden`); the channel's name is written next to it, so a
screen reader or a user who does not know the picture still reads which channel it is.
"""

from __future__ import annotations

from markupsafe import Markup

_PATHS = {
    # an envelope
    "email": '<rect x="3" y="5" width="18" height="14" rx="2"/><path d="M3 7l9 6 9-6"/>',
    # a phone with a speech line
    "sms": '<rect x="7" y="2" width="10" height="20" rx="2"/><path d="M10 18h4"/>',
    # a speech bubble
    "chat": '<path d="M4 5h16v10H9l-5 4z"/>',
    # a form with lines
    "webform": '<rect x="4" y="3" width="16" height="18" rx="1"/><path d="M8 8h8M8 12h8M8 16h5"/>',
    # a bird-like chevron for the social network
    "twitter": '<path d="M4 6l7 6-7 6M13 18h7"/>',
    # a rounded square with an f
    "facebook": '<rect x="3" y="3" width="18" height="18" rx="4"/><path d="M14 8h-2v12M10 12h6"/>',
    # two bubbles: a forum
    "community": '<path d="M3 4h12v8H7l-4 3z"/><path d="M9 14h8l4 3v-9h-3"/>',
    # a hash
    "slack": '<path d="M9 3v18M15 3v18M3 9h18M3 15h18"/>',
    # a handset
    "voice": '<path d="M6 3l3 4-2 2c1 3 4 6 7 7l2-2 4 3-2 4C10 21 3 14 3 5z"/>',
}
_OTHER = '<circle cx="12" cy="12" r="8"/><path d="M12 8v5M12 16v.5"/>'

CHANNEL_LABELS = {
    "email": "Email",
    "sms": "SMS",
    "chat": "Chat",
    "webform": "Web form",
    "twitter": "Twitter",
    "facebook": "Facebook",
    "community": "Community",
    "slack": "Slack",
    "voice": "Voice",
}
"""How each known channel is written; others are shown by their name."""


def channel_label(channel: str | None) -> str:
    """The channel's name in words."""
    if not channel:
        return "Unknown channel"
    return CHANNEL_LABELS.get(channel, channel)


def channel_icon(channel: str | None) -> Markup:
    """The channel's icon and its label, as safe HTML for a template."""
    paths = _PATHS.get(channel or "", _OTHER)
    name = Markup.escape(channel or "unknown")
    label = Markup.escape(channel_label(channel))
    return Markup(
        f'<span class="channel channel-{name}">'
        f'<svg class="icon" viewBox="0 0 24 24" aria-hidden="true" focusable="false">{paths}</svg>'
        f'<span class="channel-name">{label}</span></span>'
    )
