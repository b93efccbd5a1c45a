"""`escalator worker`."""

from __future__ import annotations


def run_worker() -> None:
    """Placeholder until wired."""
    raise SystemExit("not wired yet")
