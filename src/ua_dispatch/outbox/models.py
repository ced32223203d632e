"""The outbox schema (SQLAlchemy Core). Migrations in ``migrations/versions`` create it."""

from __future__ import annotations

import sqlalchemy as sa

from ua_dispatch.outbox.status import FINAL, QStatus

__all__ = [
    "FINAL",
    "QStatus",
    "appeals",
    "campaigns",
    "deliveries",
    "fax_event_ids",
    "fax_states",
    "holds",
    "metadata",
    "send_slots",
    "supporter_actions",
]

metadata = sa.MetaData()

_Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


campaigns = sa.Table(
    "campaigns",
    metadata,
    sa.Column("id", sa.String(200), primary_key=True),
    sa.Column("act_until", sa.Date, nullable=False),
    # the validated campaign as JSON, so workers need no campaign file
    sa.Column("doc", sa.Text, nullable=False),
    sa.Column("updated_at", sa.DateTime, nullable=False),
)

deliveries = sa.Table(
    "deliveries",
    metadata,
    sa.Column("id", _Id, primary_key=True, autoincrement=True),
    sa.Column("key", sa.String(64), nullable=False),
    sa.Column("campaign_id", sa.String(200), nullable=False),
    sa.Column("supporter_name", sa.Text),
    sa.Column("supporter_email", sa.Text),
    sa.Column("supporter_city", sa.Text),
    sa.Column("supporter_country", sa.Text),
    # keyed hash of the address (ids.supporter_hash): counts distinct supporters after a purge
    sa.Column("supporter_hash", sa.String(64), nullable=False),
    sa.Column("target_slug", sa.String(100), nullable=False),
    sa.Column("channel", sa.String(20), nullable=False),
    sa.Column("recipient", sa.Text),
    sa.Column("letter_text", sa.Text),
    sa.Column("letter_hash", sa.String(64), nullable=False),
    sa.Column("language", sa.String(8), nullable=False),
    sa.Column("send_after", sa.DateTime, nullable=False),
    # a QStatus; not constrained in the schema, so a new status needs no migration
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
    sa.Index("ix_deliveries_due", "status", "channel", "next_attempt_at", "id"),
    sa.Index("ix_deliveries_campaign", "campaign_id", "status"),
    sa.Index("ix_deliveries_target", "target_slug", "status"),
)

# One row per rate-limited recipient ("fax.number", "+74959102134"): when the last letter to it
# went. Workers take a slot with one conditional UPDATE against the spacing in force, so a
# per-recipient limit holds across every worker on every machine, not per process, and a limit
# made looser takes effect at once.
send_slots = sa.Table(
    "send_slots",
    metadata,
    sa.Column("scope", sa.String(60), primary_key=True),
    sa.Column("key", sa.String(320), primary_key=True),
    sa.Column("last_sent_at", sa.DateTime, nullable=False),
    sa.Index("ix_send_slots_key", "key"),
)

# One row per appeal made on the supporters' page: the letter waits here until its author
# confirms it, then its deliveries (by their keys) go into ``deliveries``.
appeals = sa.Table(
    "appeals",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    # the same appeal sent again (a reload, an Idempotency-Key) finds this one
    sa.Column("idem_key", sa.String(64), nullable=False),
    sa.Column("campaign_id", sa.String(200), nullable=False),
    sa.Column("supporter_name", sa.Text),
    sa.Column("supporter_email", sa.Text),
    sa.Column("supporter_city", sa.Text),
    sa.Column("supporter_country", sa.Text),
    sa.Column("supporter_hash", sa.String(64), nullable=False),
    sa.Column("letter_text", sa.Text),
    sa.Column("language", sa.String(8), nullable=False),
    # the channels asked for, comma-separated
    sa.Column("channels", sa.String(200), nullable=False),
    # JSON list of the delivery keys it queues
    sa.Column("delivery_keys", sa.Text, nullable=False),
    # "unconfirmed", "confirmed" or "cancelled"
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("confirmed_at", sa.DateTime),
    sa.Column("purged_at", sa.DateTime),
    sa.UniqueConstraint("idem_key", name="uq_appeals_idem_key"),
    sa.Index("ix_appeals_campaign", "campaign_id"),
)

# "I did this": a supporter's own report that they posted the letter, made the call or
# published the post; once per appeal, kind and official.
supporter_actions = sa.Table(
    "supporter_actions",
    metadata,
    sa.Column("id", _Id, primary_key=True, autoincrement=True),
    sa.Column("appeal_id", sa.String(32), nullable=False),
    sa.Column("campaign_id", sa.String(200), nullable=False),
    sa.Column("kind", sa.String(20), nullable=False),
    sa.Column("target_slug", sa.String(100), nullable=False),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.UniqueConstraint("appeal_id", "kind", "target_slug", name="uq_supporter_actions"),
    sa.Index("ix_supporter_actions_campaign", "campaign_id"),
)

# The latest state a fax gateway reported by callback for each fax of a delivery (a delivery
# tried again after a busy line has a new fax). ``rank`` orders
# states (queued < in progress < final) so an older event never overwrites a newer one.
fax_states = sa.Table(
    "fax_states",
    metadata,
    sa.Column("delivery_key", sa.String(64), primary_key=True),
    sa.Column("provider", sa.String(20), nullable=False),
    sa.Column("fax_id", sa.String(100), primary_key=True),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("rank", sa.Integer, nullable=False),
    sa.Column("detail", sa.Text),
    sa.Column("updated_at", sa.DateTime, nullable=False),
)

# Callback events already taken, by the gateway's event id: the same event again is a replay.
fax_event_ids = sa.Table(
    "fax_event_ids",
    metadata,
    sa.Column("provider", sa.String(20), primary_key=True),
    sa.Column("event_id", sa.String(100), primary_key=True),
    sa.Column("received_at", sa.DateTime, nullable=False),
)

# Officials the outbox holds letters to, per campaign: paused by the organizers (every
# channel, ``channel`` "*") or an email address that keeps bouncing (``channel`` "email"). A
# delivery that reaches the outbox later for a held official (a queue add, a page's appeal, a
# one-step send) is held with the others, until ``queue release`` deletes the hold.
holds = sa.Table(
    "holds",
    metadata,
    sa.Column("campaign_id", sa.String(200), primary_key=True),
    sa.Column("target_slug", sa.String(100), primary_key=True),
    sa.Column("channel", sa.String(20), primary_key=True),
    # one of ``Hold``
    sa.Column("kind", sa.String(20), nullable=False),
    sa.Column("reason", sa.Text),
    sa.Column("since", sa.DateTime, nullable=False),
)
