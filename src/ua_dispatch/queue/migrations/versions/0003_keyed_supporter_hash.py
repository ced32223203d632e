"""Supporter hashes keyed with the outbox's secret.

Rows hashed before were the plain SHA-256 of the address, which anyone with a list of addresses
could test. The keyed hash is HMAC-SHA256 of that same digest under the outbox's key, so every
row is rehashed from the hash it has, its address erased by a purge or not, and a supporter
counts once in ``report`` whichever version queued their letters. Only an outbox with rows
needs the key here (``UA_DISPATCH_SUPPORTER_KEY``, or a SQLite outbox's ``supporter.key``).

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context, op

from ua_dispatch.ids import rekey_supporter_hash

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_BATCH = 5000


def upgrade() -> None:
    bind = op.get_bind()
    old = bind.execute(sa.text("SELECT DISTINCT supporter_hash FROM deliveries")).scalars().all()
    if not old:
        return
    key = context.config.attributes["supporter_key"]()
    bind.execute(
        sa.text(
            "CREATE TEMPORARY TABLE supporter_rekey "
            "(old VARCHAR(64) PRIMARY KEY, new VARCHAR(64) NOT NULL)"
        )
    )
    insert = sa.text("INSERT INTO supporter_rekey (old, new) VALUES (:old, :new)")
    for i in range(0, len(old), _BATCH):
        bind.execute(
            insert, [{"old": h, "new": rekey_supporter_hash(h, key)} for h in old[i : i + _BATCH]]
        )
    bind.execute(
        sa.text(
            "UPDATE deliveries SET supporter_hash = (SELECT new FROM supporter_rekey "
            "WHERE supporter_rekey.old = deliveries.supporter_hash)"
        )
    )
    bind.execute(sa.text("DROP TABLE supporter_rekey"))


def downgrade() -> None:
    raise NotImplementedError("a keyed hash cannot be turned back into the address's digest")
