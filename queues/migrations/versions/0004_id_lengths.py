"""Ids as long as the contracts allow: customer ids, message keys, senders, external ids.

The contracts take identifiers of up to 1,024 characters (2,048 bytes) and message keys of
`channel:external_id` (up to 1,057 characters); PostgreSQL kept 255 and 512, so such cases
never reached the store there. SQLite ignores declared lengths, but its schema is brought
to the same declaration so both dialects match the models.

On SQLite the tables are copied (batch mode). Copying `cases` drops the old table, which
with foreign keys on deletes the messages that point at it; the messages are kept aside in
a temporary table and put back. A SQL script for SQLite (`escalator db upgrade --sql`) leaves
the declarations as they were: copying needs the live tables, and SQLite stores any length.

Revision ID: 0004_id_lengths
Revises: 0003_presence
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import context, op

revision: str = "0004_id_lengths"
down_revision: str | Sequence[str] | None = "0003_presence"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (table, column, length before, length after, nullable); literals: a migration is history
CHANGES = (
    ("cases", "customer_id", 255, 1024, False),
    ("messages", "message_key", 512, 1057, False),
    ("messages", "sender", 512, 1024, True),
    ("messages", "external_id", 512, 1024, True),
)

MESSAGE_COLUMNS = (
    "case_id, message_key, channel, direction, sender, external_id, subject, text, sent_at, "
    "event_id"
)


def upgrade() -> None:
    _resize(grow=True)


def downgrade() -> None:
    """Back to the old lengths; PostgreSQL refuses while a longer value is stored."""
    _resize(grow=False)


def _resize(*, grow: bool) -> None:
    def lengths(before: int, after: int) -> tuple[int, int]:
        return (before, after) if grow else (after, before)

    if op.get_bind().dialect.name != "sqlite":
        for table, column, before, after, nullable in CHANGES:
            old, new = lengths(before, after)
            op.alter_column(
                table,
                column,
                type_=sa.String(new),
                existing_type=sa.String(old),
                existing_nullable=nullable,
            )
        return
    if context.is_offline_mode():
        return
    op.execute(f"CREATE TEMPORARY TABLE messages_0004 AS SELECT {MESSAGE_COLUMNS} FROM messages")
    for table in ("cases", "messages"):
        with op.batch_alter_table(table, recreate="always") as batch:
            for changed_table, column, before, after, nullable in CHANGES:
                if changed_table != table:
                    continue
                old, new = lengths(before, after)
                batch.alter_column(
                    column,
                    type_=sa.String(new),
                    existing_type=sa.String(old),
                    existing_nullable=nullable,
                )
    op.execute("DELETE FROM messages")  # empty when foreign keys are on; not when off
    op.execute(
        f"INSERT INTO messages ({MESSAGE_COLUMNS}) SELECT {MESSAGE_COLUMNS} FROM messages_0004"
    )
    op.execute("DROP TABLE messages_0004")
