"""Presence from the stream: the last applied presence record, and heartbeats.

Revision ID: 0003_presence
Revises: 0002_desk
Create Date: 2026-11-26
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_presence"
down_revision: str | Sequence[str] | None = "0002_desk"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("agents", sa.Column("presence_id", sa.String(128), nullable=True))
    op.add_column("agents", sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("agents") as batch:
        batch.drop_column("heartbeat_at")
        batch.drop_column("presence_id")
