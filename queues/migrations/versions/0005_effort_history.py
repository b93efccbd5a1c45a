"""Customer effort and the 360° history: effort figures per case, resolutions with their
settled verdicts, the running totals behind the effort metrics, and customers' merges.

Cases that exist already get their contacts and agent replies counted from their messages;
their channel switches and reopens start at 0 (`escalator db rebuild` recounts them exactly).

Revision ID: 0005_effort_history
Revises: 0004_id_lengths
Create Date: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_effort_history"
down_revision: str | Sequence[str] | None = "0004_id_lengths"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# literals, not the models' constants: a migration is history
ID = 64
CUSTOMER_ID = 1024
QUEUE = 100

COUNTS = ("contacts", "agent_replies", "channel_switches", "reopens")


def upgrade() -> None:
    for name in COUNTS:
        op.add_column(
            "cases", sa.Column(name, sa.Integer(), nullable=False, server_default=sa.text("0"))
        )
    op.add_column("cases", sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("cases", sa.Column("repeat_of", sa.String(ID), nullable=True))
    op.execute(
        "UPDATE cases SET contacts = (SELECT COUNT(*) FROM messages "
        "WHERE messages.case_id = cases.case_id AND messages.direction = 'inbound'), "
        "agent_replies = (SELECT COUNT(*) FROM messages "
        "WHERE messages.case_id = cases.case_id AND messages.direction = 'outbound')"
    )
    op.create_table(
        "case_resolutions",
        sa.Column("event_id", sa.String(ID), nullable=False),
        sa.Column("case_id", sa.String(ID), nullable=False),
        sa.Column("customer_id", sa.String(CUSTOMER_ID), nullable=False),
        sa.Column("queue", sa.String(QUEUE), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("repeat_until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("settles_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("contacts", sa.Integer(), nullable=False),
        sa.Column("channel_switches", sa.Integer(), nullable=False),
        sa.Column("agent_replies", sa.Integer(), nullable=False),
        sa.Column("reopens", sa.Integer(), nullable=False),
        sa.Column("reopened_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("settled", sa.Boolean(), nullable=False),
        sa.Column("first_contact", sa.Boolean(), nullable=True),
        sa.PrimaryKeyConstraint("event_id", name=op.f("pk_case_resolutions")),
    )
    op.create_index(
        "ix_case_resolutions_customer_id_resolved_at",
        "case_resolutions",
        ["customer_id", "resolved_at"],
    )
    op.create_index(
        "ix_case_resolutions_settled_settles_at", "case_resolutions", ["settled", "settles_at"]
    )
    op.create_index("ix_case_resolutions_case_id", "case_resolutions", ["case_id"])
    op.create_table(
        "effort_counters",
        sa.Column("family", sa.String(64), nullable=False),
        sa.Column("queue", sa.String(QUEUE), nullable=False),
        sa.Column("le", sa.String(16), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("family", "queue", "le", name=op.f("pk_effort_counters")),
    )
    op.create_table(
        "customer_merges",
        sa.Column("customer_id", sa.String(CUSTOMER_ID), nullable=False),
        sa.Column("merged_into", sa.String(CUSTOMER_ID), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("by", sa.String(128), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("customer_id", name=op.f("pk_customer_merges")),
    )
    op.create_index("ix_customer_merges_merged_into", "customer_merges", ["merged_into"])


def downgrade() -> None:
    op.drop_table("customer_merges")
    op.drop_table("effort_counters")
    op.drop_table("case_resolutions")
    # Plain ALTER TABLE ... DROP COLUMN on every dialect (SQLite has it since 3.35): copying
    # `cases` in batch mode would delete the messages that point at it (see 0004).
    for name in ("repeat_of", "resolved_at", *reversed(COUNTS)):
        op.execute(f"ALTER TABLE cases DROP COLUMN {name}")
