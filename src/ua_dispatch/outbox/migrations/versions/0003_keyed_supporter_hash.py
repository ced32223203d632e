"""Supporter hashes keyed with the outbox's secret; no planner statistics of personal data.

Rows hashed before were the plain SHA-256 of the address, which anyone with a list of addresses
could test. The keyed hash is HMAC-SHA256 of that same digest under the outbox's key, so every
row is rehashed from the hash it has, its address erased by a purge or not, and a supporter
counts once in ``report`` whichever version queued their letters. Only an outbox with rows
needs the key here (``UA_DISPATCH_SUPPORTER_KEY``, or a SQLite outbox's ``supporter.key``).

PostgreSQL's ANALYZE keeps a sample of each column's values in ``pg_statistic``, where a purge
cannot reach them: the columns that hold personal data (never searched by) get no statistics,
and those already gathered are dropped (re-declaring a column's type drops them, without
rewriting the table).

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


#: columns a purge erases (and the letter's hash), with their types as declared
_PERSONAL = {
    "supporter_name": "TEXT",
    "supporter_email": "TEXT",
    "supporter_city": "TEXT",
    "supporter_country": "TEXT",
    "letter_text": "TEXT",
    "letter_hash": "VARCHAR(64)",
    "last_error": "TEXT",
}


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        for column, type_ in _PERSONAL.items():
            bind.execute(
                sa.text(
                    f"ALTER TABLE deliveries ALTER COLUMN {column} TYPE {type_}, "
                    f"ALTER COLUMN {column} SET STATISTICS 0"
                )
            )
    _rekey(bind)


def _rekey(bind: sa.Connection) -> None:
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
