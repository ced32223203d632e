"""Appeals made on the supporters' page, waiting for confirmation or queued, and the
actions supporters report they took themselves ("I did this").

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "appeals",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("idem_key", sa.String(64), nullable=False),
        sa.Column("campaign_id", sa.String(200), nullable=False),
        sa.Column("supporter_name", sa.Text),
        sa.Column("supporter_email", sa.Text),
        sa.Column("supporter_city", sa.Text),
        sa.Column("supporter_country", sa.Text),
        sa.Column("supporter_hash", sa.String(64), nullable=False),
        sa.Column("letter_text", sa.Text),
        sa.Column("language", sa.String(8), nullable=False),
        sa.Column("channels", sa.String(200), nullable=False),
        sa.Column("delivery_keys", sa.Text, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("confirmed_at", sa.DateTime),
        sa.Column("purged_at", sa.DateTime),
        sa.UniqueConstraint("idem_key", name="uq_appeals_idem_key"),
    )
    op.create_index("ix_appeals_campaign", "appeals", ["campaign_id"])
    op.create_table(
        "supporter_actions",
        sa.Column("id", _Id, primary_key=True, autoincrement=True),
        sa.Column("appeal_id", sa.String(32), nullable=False),
        sa.Column("campaign_id", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("target_slug", sa.String(100), nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.UniqueConstraint("appeal_id", "kind", "target_slug", name="uq_supporter_actions"),
    )
    op.create_index("ix_supporter_actions_campaign", "supporter_actions", ["campaign_id"])
    if op.get_bind().dialect.name == "postgresql":
        # no planner statistics of personal data (as for deliveries in 0003)
        for column in (
            "supporter_name",
            "supporter_email",
            "supporter_city",
            "supporter_country",
            "letter_text",
        ):
            op.execute(f"ALTER TABLE appeals ALTER COLUMN {column} SET STATISTICS 0")


def downgrade() -> None:
    op.drop_index("ix_supporter_actions_campaign", table_name="supporter_actions")
    op.drop_table("supporter_actions")
    op.drop_index("ix_appeals_campaign", table_name="appeals")
    op.drop_table("appeals")
