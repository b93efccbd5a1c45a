"""Alembic migrations of the case store, run programmatically by `queues.migrate`."""
