"""Holds that outlast the rows they held: an official paused by the organizers, or an email
address that keeps bouncing, is recorded in ``holds``, so letters that reach the outbox later
(a queue add, a page's appeal, a one-step send) are held too. Until now a hold was only the
``held`` status of the rows queued at the time.

The holds already in an outbox are carried over: held email rows marked ``dead-address``
become a dead-address hold of that official's email, other held rows a pause of the official.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    holds = op.create_table(
        "holds",
        sa.Column("campaign_id", sa.String(200), primary_key=True),
        sa.Column("target_slug", sa.String(100), primary_key=True),
        sa.Column("channel", sa.String(20), primary_key=True),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("reason", sa.Text),
        sa.Column("since", sa.DateTime, nullable=False),
    )
    assert holds is not None
    deliveries = sa.table(
        "deliveries",
        sa.column("campaign_id", sa.String),
        sa.column("target_slug", sa.String),
        sa.column("channel", sa.String),
        sa.column("status", sa.String),
        sa.column("error_kind", sa.String),
        sa.column("last_error", sa.Text),
    )
    d = deliveries.c
    conn = op.get_bind()
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    found = conn.execute(
        sa.select(d.campaign_id, d.target_slug, d.error_kind, sa.func.max(d.last_error))
        .where(d.status == "held")
        .group_by(d.campaign_id, d.target_slug, d.error_kind)
    ).all()
    rows: dict[tuple[str, str, str], dict[str, object]] = {}
    for campaign, target, kind, reason in found:
        dead = kind == "dead-address"
        channel = "email" if dead else "*"
        rows[(campaign, target, channel)] = {
            "campaign_id": campaign,
            "target_slug": target,
            "channel": channel,
            "kind": "dead-address" if dead else "paused",
            "reason": reason if dead else None,
            "since": now,
        }
    if rows:
        op.bulk_insert(holds, list(rows.values()))


def downgrade() -> None:
    op.drop_table("holds")
