"""`escalator broker`."""

from __future__ import annotations


def run_broker() -> None:
    """Placeholder until wired."""
    raise SystemExit("not wired yet")
