"""The outbox: campaigns and one row per delivery.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "campaigns",
        sa.Column("id", sa.String(200), primary_key=True),
        sa.Column("act_until", sa.Date, nullable=False),
        sa.Column("doc", sa.Text, nullable=False),
        sa.Column("updated_at", sa.DateTime, nullable=False),
    )
    op.create_table(
        "deliveries",
        sa.Column("id", _Id, primary_key=True, autoincrement=True),
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("campaign_id", sa.String(200), nullable=False),
        sa.Column("supporter_name", sa.Text),
        sa.Column("supporter_email", sa.Text),
        sa.Column("supporter_city", sa.Text),
        sa.Column("supporter_country", sa.Text),
        sa.Column("supporter_hash", sa.String(64), nullable=False),
        sa.Column("target_slug", sa.String(100), nullable=False),
        sa.Column("channel", sa.String(20), nullable=False),
        sa.Column("recipient", sa.Text),
        sa.Column("letter_text", sa.Text),
        sa.Column("letter_hash", sa.String(64), nullable=False),
        sa.Column("language", sa.String(8), nullable=False),
        sa.Column("send_after", sa.DateTime, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("next_attempt_at", sa.DateTime, nullable=False),
        sa.Column("last_error", sa.Text),
        sa.Column("error_kind", sa.String(20)),
        sa.Column("error_code", sa.String(40)),
        sa.Column("provider_ref", sa.Text),
        sa.Column("lease_owner", sa.String(120)),
        sa.Column("lease_until", sa.DateTime),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("updated_at", sa.DateTime, nullable=False),
        sa.Column("finished_at", sa.DateTime),
        sa.Column("purged_at", sa.DateTime),
        sa.UniqueConstraint("key", name="uq_deliveries_key"),
    )
    op.create_index("ix_deliveries_due", "deliveries", ["status", "next_attempt_at"])
    op.create_index("ix_deliveries_campaign", "deliveries", ["campaign_id", "status"])
    op.create_index("ix_deliveries_target", "deliveries", ["target_slug", "status"])


def downgrade() -> None:
    op.drop_table("deliveries")
    op.drop_table("campaigns")
