"""Per-recipient send slots shared by every worker (one fax per number every two minutes),
and the due index in claim order (status, channel, next_attempt_at, id) so a claim reads only
the rows it takes, even when thousands share one send-after time.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "send_slots",
        sa.Column("scope", sa.String(60), primary_key=True),
        sa.Column("key", sa.String(320), primary_key=True),
        sa.Column("last_sent_at", sa.DateTime, nullable=False),
    )
    op.create_index("ix_send_slots_key", "send_slots", ["key"])
    op.drop_index("ix_deliveries_due", table_name="deliveries")
    op.create_index(
        "ix_deliveries_due", "deliveries", ["status", "channel", "next_attempt_at", "id"]
    )


def downgrade() -> None:
    op.drop_index("ix_deliveries_due", table_name="deliveries")
    op.create_index("ix_deliveries_due", "deliveries", ["status", "next_attempt_at"])
    op.drop_table("send_slots")
