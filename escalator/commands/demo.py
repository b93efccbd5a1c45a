"""`escalator demo`."""

from __future__ import annotations


def run_demo() -> None:
    """Placeholder until wired."""
    raise SystemExit("not wired yet")
