"""The desk: queue settings, agents, queue membership, assignments, case ownership columns.

Revision ID: 0002_desk
Revises: 0001_case_store
Create Date: 2026-11-26
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002_desk"
down_revision: str | Sequence[str] | None = "0001_case_store"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Plain ADD COLUMN, not a batch copy: copying `queues` on SQLite would trip the foreign
    # keys that point at it.
    op.add_column(
        "queues",
        sa.Column("strategy", sa.String(16), nullable=False, server_default="least_loaded"),
    )
    op.add_column("queues", sa.Column("mode", sa.String(8), nullable=False, server_default="push"))
    op.add_column("queues", sa.Column("skills", sa.JSON(), nullable=False, server_default="[]"))
    op.add_column(
        "queues",
        sa.Column("accept_timeout_seconds", sa.Integer(), nullable=False, server_default="120"),
    )
    op.add_column("cases", sa.Column("assignee", sa.String(64), nullable=True))
    op.add_column(
        "cases",
        sa.Column("assignment_pending", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    op.add_column("cases", sa.Column("channel", sa.String(32), nullable=True))
    op.add_column("cases", sa.Column("sla_due_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index("ix_cases_assignee", "cases", ["assignee"])
    op.create_table(
        "agents",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("role", sa.String(8), nullable=False),
        sa.Column("skills", sa.JSON(), nullable=False),
        sa.Column("capacity", sa.JSON(), nullable=False),
        sa.Column("presence", sa.String(8), nullable=False),
        sa.Column("presence_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_agents")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_agents_token_hash")),
    )
    op.create_table(
        "queue_members",
        sa.Column("queue", sa.String(100), nullable=False),
        sa.Column("agent", sa.String(64), nullable=False),
        sa.ForeignKeyConstraint(
            ["queue"],
            ["queues.name"],
            name=op.f("fk_queue_members_queue_queues"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["agent"],
            ["agents.name"],
            name=op.f("fk_queue_members_agent_agents"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("queue", "agent", name=op.f("pk_queue_members")),
    )
    op.create_table(
        "assignments",
        sa.Column("event_id", sa.String(64), nullable=False),
        sa.Column("case_id", sa.String(64), nullable=False),
        sa.Column("agent", sa.String(64), nullable=False),
        sa.Column("queue", sa.String(100), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_reason", sa.Text(), nullable=False),
        sa.Column("accepted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_reason", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("event_id", name=op.f("pk_assignments")),
    )
    op.create_index("ix_assignments_case_id", "assignments", ["case_id"])
    op.create_index("ix_assignments_agent_ended_at", "assignments", ["agent", "ended_at"])


def downgrade() -> None:
    op.drop_index("ix_assignments_agent_ended_at", table_name="assignments")
    op.drop_index("ix_assignments_case_id", table_name="assignments")
    op.drop_table("assignments")
    op.drop_table("queue_members")
    op.drop_table("agents")
    op.drop_index("ix_cases_assignee", table_name="cases")
    # ALTER TABLE ... DROP COLUMN exists on PostgreSQL and on SQLite >= 3.35.
    for table, column in (
        ("cases", "sla_due_at"),
        ("cases", "channel"),
        ("cases", "assignment_pending"),
        ("cases", "assignee"),
        ("queues", "accept_timeout_seconds"),
        ("queues", "skills"),
        ("queues", "mode"),
        ("queues", "strategy"),
    ):
        op.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
