"""Escalator's composition root: settings, the `escalator` CLI and the wiring of the packages."""
