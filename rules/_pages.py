"""On-call paging as the rules plan it: pager targets, chains of levels, which level a page hits.

A pager (`pagers:` in the rule file) is one target on one provider (PagerDuty, Opsgenie, SMS,
Slack, email) or a chain of levels, each a list of targets paged `pages` times before the next
level takes over. An escalation step with `page: NAME` pages it; with `until: acknowledged` it
repeats `every` interval until someone acknowledges, claims or resolves the case. Secrets
(routing keys, API keys, tokens, webhook URLs) are never in the rules: the reply service
takes them from its settings, by pager name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["PROVIDERS", "PageLevel", "PageRequest", "PagerTarget", "level_for"]

PROVIDERS: tuple[str, ...] = ("pagerduty", "opsgenie", "sms", "slack", "email")
"""The providers a pager target can use (its `via`)."""


@dataclass(frozen=True)
class PagerTarget:
    """One target: its name in the rules, its provider and the provider's non-secret settings."""

    name: str
    via: str
    settings: tuple[tuple[str, Any], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """The target as plain JSON data (lists for tuples)."""
        settings = {
            key: list(value) if isinstance(value, tuple) else value for key, value in self.settings
        }
        return {"name": self.name, "via": self.via, "settings": settings}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PagerTarget:
        """Read back what `to_dict` wrote."""
        settings = data.get("settings") or {}
        return cls(
            name=str(data["name"]),
            via=str(data["via"]),
            settings=tuple(
                (key, tuple(value) if isinstance(value, list) else value)
                for key, value in sorted(settings.items())
            ),
        )


@dataclass(frozen=True)
class PageLevel:
    """One level of a chain: its targets, and how many unacknowledged pages before the next
    level (None on the last level, which repeats until acknowledged)."""

    targets: tuple[PagerTarget, ...]
    pages: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """The level as plain JSON data."""
        return {"targets": [target.to_dict() for target in self.targets], "pages": self.pages}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PageLevel:
        """Read back what `to_dict` wrote."""
        pages = data.get("pages")
        return cls(
            targets=tuple(PagerTarget.from_dict(item) for item in data["targets"]),
            pages=None if pages is None else int(pages),
        )


def level_for(levels: tuple[PageLevel, ...], firing: int) -> int:
    """The level that page number `firing` (0 for the first) goes to.

    Level 0 takes its `pages` pages, the next level its own, and so on; the last level takes
    every page after that.
    """
    used = 0
    for index, level in enumerate(levels):
        if level.pages is None or index == len(levels) - 1:
            return index
        used += level.pages
        if firing < used:
            return index
    return max(len(levels) - 1, 0)


@dataclass(frozen=True)
class PageRequest:
    """What one firing of a paging step asks for: page these targets under `run`'s incident.

    `run` identifies the armed step (its trigger and index) within the case, so every repeat
    and every level of one escalation is one incident at the provider (one dedup key), which
    an acknowledgement, a claim or a resolution closes. `number` counts the pages (1 first).
    """

    pager: str
    run: str
    level: int
    number: int
    targets: tuple[PagerTarget, ...]
    until: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The request as plain JSON data (a `case.escalated` event's `escalation.page`)."""
        return {
            "pager": self.pager,
            "run": self.run,
            "level": self.level,
            "number": self.number,
            "targets": [target.to_dict() for target in self.targets],
            "until": self.until,
        }
