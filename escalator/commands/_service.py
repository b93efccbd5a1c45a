"""What the long-running store services (`desk`, `projection`) share at start-up."""

from __future__ import annotations

from typing import Annotated

import typer

from escalator.settings import KafkaSettings, Settings

MigrateFirst = Annotated[bool, typer.Option(help="Upgrade the case store schema before starting.")]
"""The `--migrate/--no-migrate` option of a service that owns the case store schema."""


def start_service(migrate: bool) -> tuple[Settings, KafkaSettings]:
    """Read the settings, configure logging and, if asked, upgrade the case store schema."""
    from escalator.observability.logs import configure_logging
    from queues import upgrade

    settings = Settings()
    kafka = KafkaSettings()
    configure_logging(settings.log_level, settings.log_format, settings.log_redact)
    if migrate:
        upgrade(settings.effective_database_url)
    return settings, kafka
