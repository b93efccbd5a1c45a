"""`python -m escalator` runs the CLI (used by the demo to start its processes)."""

from escalator.cli import main

main()
