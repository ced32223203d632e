"""The outbox: every statement that reads or changes it, behind one class, :class:`Outbox`.

Every change is one short transaction. Database failures leave it as
:class:`~ua_dispatch.errors.OutboxUnavailable`, so callers never see SQLAlchemy's errors.

Claiming: a worker takes due rows (queued and due, or in flight under a lease that ran out) and
marks them in flight under its own lease. On PostgreSQL the candidate rows are locked with
``FOR UPDATE SKIP LOCKED`` so concurrent workers never take the same row; SQLite serialises
writers, so the same statement is safe there too.

One-step sends reserve their deliveries before delivering them (:meth:`Outbox.reserve`), all
in one transaction:

- one recorded as sent by an earlier run is not sent again;
- one another process holds right now (a queue worker, or the same send started twice) is left
  to it;
- one the organizers hold or cancelled (the case changed) is not sent;
- one that ended ``ambiguous`` (it may have arrived) is not sent again until a person checked;
- one waiting in the queue (queued, failed, expired, or in flight under a lease that ran out) is
  taken over, and one not in the outbox yet is added, in flight under the send's own lease,
  so no worker and no second copy of the send delivers it meanwhile.

The send renews that lease while it runs (:meth:`Outbox.keep_lease`). Afterwards
(:meth:`Outbox.record`) a sent delivery is recorded as sent, a permanent failure as failed (as
ambiguous when it may have arrived), and one whose in-process retry budget was spent on
transient failures is left queued, due after ``queue_retry_delay``, for the worker to try again
with the same delivery key (and so the same Message-ID). What the send did not finish (Ctrl-C,
its own account refused) is given back as it was.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import functools
import re
import sqlite3
import time
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Mapping,
    Sequence,
)
from typing import Any, ParamSpec, TypeVar

import sqlalchemy as sa
import structlog
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ua_dispatch.campaign import Campaign
from ua_dispatch.delivery import FailureKind
from ua_dispatch.errors import OutboxUnavailable, one_line
from ua_dispatch.ids import supporter_hash
from ua_dispatch.outbox.db import BUSY_TIMEOUT_MS, open_engine, sqlite_pragmas, supporter_key
from ua_dispatch.outbox.models import (
    FINAL,
    QStatus,
    appeals,
    campaigns,
    deliveries,
    fax_event_ids,
    fax_states,
    holds,
    send_slots,
    supporter_actions,
)
from ua_dispatch.outbox.owners import is_gone, new_owner
from ua_dispatch.outbox.records import (
    AppealRecord,
    DeliveryRecord,
    NewDelivery,
    Outcome,
    Recorded,
    Reservation,
    delivery_row,
    utcnow,
)
from ua_dispatch.outbox.status import EVERY_CHANNEL, Hold, Returned
from ua_dispatch.outcome import Outcome as SendOutcome
from ua_dispatch.plan import Appeal, Delivery, Status
from ua_dispatch.settings import Settings

__all__ = ["BULK", "Outbox", "OutcomeWriter", "outbox_error", "utcnow"]

D = deliveries.c
A = appeals.c
SA = supporter_actions.c
log = structlog.get_logger("ua_dispatch.outbox")
S = send_slots.c
P = ParamSpec("P")
T = TypeVar("T")


_NEVER = dt.datetime(1970, 1, 1)
#: rows changed at once from which the outbox is tidied (see Outbox.tidy)
BULK = 1000
#: after a purge, how often and how long (ms) a TRUNCATE checkpoint waits for other processes'
#: reads to end (it holds back their writes meanwhile), and how long VACUUM FULL waits for
#: its lock (PostgreSQL)
_SCRUB_TRIES = 3
_CHECKPOINT_WAIT_MS = 2_000
_VACUUM_LOCK_WAIT = "10s"
#: VACUUM FULL keeps the old row versions a transaction still open somewhere on the server may
#: see; it is run again, this often and this far apart, until it keeps none
_VACUUM_TRIES = 20
_VACUUM_PAUSE = 0.25
#: what VACUUM VERBOSE says of the old row versions it had to keep (the server's messages in
#: English; in another language nothing is read and nothing is retried)
_KEPT_VERSIONS = re.compile(r"(\d+) dead row versions cannot be removed yet")

#: why a reserved delivery is not sent by this run, by the row's status
_NOT_MINE = {
    str(QStatus.IN_FLIGHT): "another process (a queue worker, or this send started twice) is "
    "delivering it now; see `ua-dispatch queue list`",
    str(QStatus.HELD): "the organizers hold deliveries to this official; it waits in the "
    "outbox until `ua-dispatch queue release` resumes them",
    str(QStatus.CANCELLED): "the organizers cancelled deliveries to this official",
    str(QStatus.AMBIGUOUS): "an earlier try may have delivered it and nobody could tell; "
    "check with the recipient, then `ua-dispatch queue retry --ambiguous` sends it again",
}


#: what a one-step send may take over (an in-flight row only once its lease ran out)
_TAKEABLE = [str(s) for s in (QStatus.QUEUED, QStatus.FAILED, QStatus.EXPIRED, QStatus.IN_FLIGHT)]


def _hold_for(
    holding: Mapping[tuple[str, str, str], Any], campaign: str, target: str, channel: str
) -> Any:
    """The hold, if any, on one official's ``channel`` in ``campaign``: one on that channel,
    else one on every channel. ``holding`` maps (campaign, target, channel) to hold rows."""
    return holding.get((campaign, target, channel)) or holding.get(
        (campaign, target, EVERY_CHANNEL)
    )


def _held_values(hold: Any, now: dt.datetime) -> dict[str, Any]:
    """The column values of a row held by ``hold`` (a dead address gives its reason)."""
    values: dict[str, Any] = {"status": str(QStatus.HELD), "updated_at": now}
    if hold.kind == Hold.DEAD_ADDRESS:
        values.update(error_kind=str(Returned.DEAD_ADDRESS), last_error=hold.reason)
    return values


def _hold_words(hold: Any) -> str:
    """Why a send leaves a delivery to a held official in the outbox."""
    if hold.kind == Hold.DEAD_ADDRESS and hold.reason:
        return str(hold.reason)
    return _NOT_MINE[str(QStatus.HELD)]


class _SlotBusy(Exception):
    def __init__(self, free_at: dt.datetime):
        self.free_at = free_at


def outbox_error(exc: BaseException) -> OutboxUnavailable | None:
    """The outbox error a database failure stands for; None for any other exception."""
    if isinstance(exc, OutboxUnavailable):
        return exc
    if isinstance(exc, sa.exc.SQLAlchemyError | sqlite3.Error):
        return OutboxUnavailable(f"the outbox failed: {one_line(exc)}")
    return None


def _translated(method: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T]]:
    """Database errors of an outbox method leave it as OutboxUnavailable."""

    @functools.wraps(method)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return await method(*args, **kwargs)
        except (sa.exc.SQLAlchemyError, sqlite3.Error) as exc:
            raise OutboxUnavailable(f"the outbox failed: {one_line(exc)}") from exc

    return wrapper


async def _vacuum_full(conn: AsyncConnection) -> int:
    """``VACUUM FULL deliveries`` (with its TOAST table and indexes); how many old row versions
    it had to keep because a transaction open somewhere might still see them."""
    raw = await conn.get_raw_connection()
    driver: Any = raw.driver_connection  # asyncpg's connection: the server's VERBOSE lines
    details: list[str] = []

    def listen(_connection: Any, message: Any) -> None:
        details.append(str(getattr(message, "detail", "") or ""))

    driver.add_log_listener(listen)
    try:
        await conn.execute(sa.text("VACUUM (FULL, VERBOSE) deliveries"))
        await asyncio.sleep(0)  # the listener is called from the event loop
    finally:
        driver.remove_log_listener(listen)
    return sum(int(m.group(1)) for d in details for m in _KEPT_VERSIONS.finditer(d))


class Outbox:
    """The outbox database: open it with :meth:`open`, close it with :meth:`close` (or use it
    as ``async with``)."""

    def __init__(self, engine: AsyncEngine, settings: Settings):
        self.engine = engine
        self.settings = settings
        self._campaigns: dict[str, Campaign] = {}
        #: campaigns this process has made sure the outbox holds
        self._put: set[str] = set()
        self._hash_key: bytes | None = None
        self._writing = asyncio.Lock()

    @classmethod
    async def open(cls, settings: Settings) -> Outbox:
        return cls(await open_engine(settings), settings)

    async def close(self) -> None:
        await self.engine.dispose()

    async def __aenter__(self) -> Outbox:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    # --- loading ---

    async def put_campaign(
        self, conn: AsyncConnection, campaign: Campaign, *, replace: bool = True
    ) -> None:
        """Store the campaign the workers deliver from; ``replace=False`` only adds a missing
        one (a supporter's copy must not overwrite the organizers')."""
        values = {
            "id": campaign.id,
            "act_until": campaign.act_until,
            "doc": campaign.model_dump_json(),
            "updated_at": utcnow(),
        }
        ins = self._insert(campaigns).values(**values)
        await conn.execute(
            ins.on_conflict_do_update(
                index_elements=["id"],
                set_={k: ins.excluded[k] for k in ("act_until", "doc", "updated_at")},
            )
            if replace
            else ins.on_conflict_do_nothing(index_elements=["id"])
        )
        if replace:
            self._campaigns[campaign.id] = campaign

    def _insert(self, table: sa.Table) -> Any:
        # each dialect's INSERT knows ON CONFLICT; loaded on first use, so a SQLite outbox
        # never loads the PostgreSQL dialect
        if self.dialect == "postgresql":
            from sqlalchemy.dialects import postgresql

            return postgresql.insert(table)
        from sqlalchemy.dialects import sqlite

        return sqlite.insert(table)

    async def insert_rows(self, conn: AsyncConnection, rows: Sequence[Mapping[str, Any]]) -> None:
        """Insert deliveries; a key already in the outbox is left as it is."""
        if rows:
            stmt = self._insert(deliveries).on_conflict_do_nothing(index_elements=["key"])
            await conn.execute(stmt, list(rows))

    async def insert_rows_returning_keys(
        self, conn: AsyncConnection, rows: Sequence[Mapping[str, Any]]
    ) -> set[str]:
        """Insert deliveries one by one; returns the keys that were new (a key already in the
        outbox, perhaps added a moment ago by another process, is left as it is)."""
        added: set[str] = set()
        for row in rows:
            stmt = (
                self._insert(deliveries)
                .values(**row)
                .on_conflict_do_nothing(index_elements=["key"])
                .returning(D.key)
            )
            added.update(k for (k,) in (await conn.execute(stmt)).all())
        return added

    async def count(self, conn: AsyncConnection | None = None, **where: Any) -> int:
        stmt = sa.select(sa.func.count()).select_from(deliveries)
        for k, v in where.items():
            stmt = stmt.where(D[k] == v)
        if conn is not None:
            return int((await conn.execute(stmt)).scalar_one())
        async with self.engine.connect() as c:
            return int((await c.execute(stmt)).scalar_one())

    @_translated
    async def campaign(self, campaign_id: str) -> Campaign:
        found = self._campaigns.get(campaign_id)
        if found is None:
            async with self.engine.connect() as conn:
                doc = (
                    await conn.execute(
                        sa.select(campaigns.c.doc).where(campaigns.c.id == campaign_id)
                    )
                ).scalar_one()
            found = self._campaigns[campaign_id] = Campaign.model_validate_json(doc)
        return found

    # --- organiser commands ---

    @_translated
    async def rows(
        self,
        *,
        campaign: str | None = None,
        statuses: Iterable[str] = (),
        target: str | None = None,
        limit: int | None = None,
    ) -> list[DeliveryRecord]:
        stmt = sa.select(deliveries).order_by(D.next_attempt_at, D.id)
        stmt = _filter(stmt, campaign=campaign, statuses=list(statuses), target=target)
        if limit is not None:
            stmt = stmt.limit(limit)
        async with self.engine.connect() as conn:
            return [DeliveryRecord.of(r) for r in (await conn.execute(stmt)).mappings()]

    @_translated
    async def count_rows(
        self,
        *,
        campaign: str | None = None,
        statuses: Iterable[str] = (),
        target: str | None = None,
    ) -> int:
        """How many rows :meth:`rows` would list without a limit."""
        stmt = sa.select(sa.func.count()).select_from(deliveries)
        stmt = _filter(stmt, campaign=campaign, statuses=list(statuses), target=target)
        async with self.engine.connect() as conn:
            return int((await conn.execute(stmt)).scalar_one())

    @_translated
    async def known_targets(self, campaign: str | None = None) -> tuple[list[str], list[str]]:
        """The campaign ids in the outbox, and the target slugs of those campaigns (only
        ``campaign``'s when given) together with the slugs their deliveries name."""
        async with self.engine.connect() as conn:
            ids = list(
                (await conn.execute(sa.select(campaigns.c.id).order_by(campaigns.c.id))).scalars()
            )
            named = sa.select(D.target_slug).distinct()
            if campaign is not None:
                named = named.where(D.campaign_id == campaign)
            slugs = set((await conn.execute(named)).scalars())
        for cid in ids:
            if campaign is None or cid == campaign:
                slugs.update(t.slug for t in (await self.campaign(cid)).targets)
        return ids, sorted(slugs)

    @_translated
    async def move(
        self,
        from_statuses: Sequence[QStatus],
        to: QStatus,
        *,
        campaign: str | None = None,
        target: str | None = None,
        due_now: bool = False,
    ) -> int:
        """Change the status of matching rows; returns how many changed."""
        async with self.engine.begin() as conn:
            changed = await self._move(
                conn, from_statuses, to, campaign=campaign, target=target, due_now=due_now
            )
            if to == QStatus.QUEUED and changed:
                # a retry queues again: an official still held keeps what is tried again
                await self._apply_holds(conn, campaign)
        if changed >= BULK:
            await self.tidy()
        return changed

    async def _move(
        self,
        conn: AsyncConnection,
        from_statuses: Sequence[QStatus],
        to: QStatus,
        *,
        campaign: str | None,
        target: str | None,
        due_now: bool = False,
    ) -> int:
        now = utcnow()
        values: dict[str, Any] = {"status": str(to), "updated_at": now}
        if to == QStatus.QUEUED:
            # a hold for a dead address ends with it (the address was fixed)
            dead = D.error_kind == str(Returned.DEAD_ADDRESS)
            values["last_error"] = sa.case((dead, None), else_=D.last_error)
            values["error_kind"] = sa.case((dead, None), else_=D.error_kind)
        if due_now:
            values["next_attempt_at"] = now
        if to in FINAL:
            values["finished_at"] = now
        stmt = _filter(
            deliveries.update(), campaign=campaign, statuses=list(from_statuses), target=target
        ).values(**values)
        return int((await conn.execute(stmt)).rowcount)

    # --- holds: an official paused by the organizers, an address that keeps bouncing ---

    @_translated
    async def hold_target(self, target: str, campaign: str | None = None) -> int:
        """Pause one official, in ``campaign`` or in every campaign the outbox knows them in:
        what is queued to them is held, and so is what reaches the outbox for them later,
        until :meth:`release_target`. Returns how many queued deliveries were held."""
        ids = [campaign] if campaign is not None else await self._campaigns_naming(target)
        now = utcnow()
        async with self.engine.begin() as conn:
            for cid in ids:
                await self._put_hold(conn, cid, target, EVERY_CHANNEL, Hold.PAUSED, None, now)
            changed = await self._move(
                conn, [QStatus.QUEUED], QStatus.HELD, campaign=campaign, target=target
            )
        if changed >= BULK:
            await self.tidy()
        return changed

    @_translated
    async def release_target(self, target: str, campaign: str | None = None) -> int:
        """End every hold of one official (in ``campaign``, or in all): what was held is
        queued again, and later letters to them are not held. Returns how many deliveries."""
        H = holds.c
        gone = holds.delete().where(H.target_slug == target)
        if campaign is not None:
            gone = gone.where(H.campaign_id == campaign)
        async with self.engine.begin() as conn:
            await conn.execute(gone)
            changed = await self._move(
                conn, [QStatus.HELD], QStatus.QUEUED, campaign=campaign, target=target
            )
        if changed >= BULK:
            await self.tidy()
        return changed

    @_translated
    async def holds_in(self, campaign: str) -> list[tuple[str, str, str, str | None]]:
        """(target, channel, kind, reason) of each hold in a campaign, by official."""
        H = holds.c
        stmt = (
            sa.select(H.target_slug, H.channel, H.kind, H.reason)
            .where(H.campaign_id == campaign)
            .order_by(H.target_slug, H.channel)
        )
        async with self.engine.connect() as conn:
            return [(t, c, k, r) for t, c, k, r in (await conn.execute(stmt)).all()]

    async def _campaigns_naming(self, target: str) -> list[str]:
        """The campaigns in the outbox whose officials include ``target``."""
        async with self.engine.connect() as conn:
            ids = [cid for (cid,) in (await conn.execute(sa.select(campaigns.c.id))).all()]
        return [
            cid for cid in ids if any(t.slug == target for t in (await self.campaign(cid)).targets)
        ]

    async def _put_hold(
        self,
        conn: AsyncConnection,
        campaign: str,
        target: str,
        channel: str,
        kind: Hold,
        reason: str | None,
        now: dt.datetime,
    ) -> bool:
        """Record a hold; False when that official's channel was held already (kept as it
        was)."""
        row = {
            "campaign_id": campaign,
            "target_slug": target,
            "channel": channel,
            "kind": str(kind),
            "reason": reason,
            "since": now,
        }
        added = await conn.execute(self._insert(holds).values(row).on_conflict_do_nothing())
        return bool(added.rowcount)

    async def _held(
        self, conn: AsyncConnection, campaigns_: Iterable[str]
    ) -> dict[tuple[str, str, str], Any]:
        """(campaign, target, channel) -> the hold row, of these campaigns' holds (see
        :func:`_hold_for`)."""
        H = holds.c
        found = await conn.execute(sa.select(holds).where(H.campaign_id.in_(set(campaigns_))))
        return {(r.campaign_id, r.target_slug, r.channel): r for r in found.all()}

    async def _apply_holds(self, conn: AsyncConnection, campaign: str | None) -> int:
        """Hold what is queued to the officials a campaign holds (every campaign's, when
        None): email to a dead address with its reason first, then everything to a paused
        official. Run where rows become queued (added, tried again); a row that goes back to
        the queue otherwise (a worker giving it back) is held when next claimed. Returns how
        many rows it held."""
        H = holds.c
        found = sa.select(holds).order_by(H.kind)
        if campaign is not None:
            found = found.where(H.campaign_id == campaign)
        now = utcnow()
        held = 0
        for hold in (await conn.execute(found)).all():
            which = sa.select(D.id).where(
                D.campaign_id == hold.campaign_id,
                D.target_slug == hold.target_slug,
                D.status == str(QStatus.QUEUED),
            )
            if hold.channel != EVERY_CHANNEL:
                which = which.where(D.channel == hold.channel)
            changed = await conn.execute(
                deliveries.update()
                .where(D.id.in_(which.scalar_subquery()))
                .values(**_held_values(hold, now))
            )
            held += int(changed.rowcount)
        return held

    # --- workers ---

    async def tidy(self) -> None:
        """After a bulk change (a large ``queue add``, a hold or cancel of thousands of rows)
        bring PostgreSQL's statistics up to date and clear the dead row versions. Without it a
        fresh table's statistics lead the planner to read every due row, dead ones included,
        on each claim (~100 ms instead of ~1 ms with 100,000 rows). SQLite needs neither."""
        if self.dialect != "postgresql":
            return
        try:
            async with self.engine.connect() as conn:
                auto = await conn.execution_options(isolation_level="AUTOCOMMIT")
                # never wait long behind another maintenance job: autovacuum gets there too
                await auto.execute(sa.text("SET lock_timeout = '2s'"))
                await auto.execute(sa.text("VACUUM (ANALYZE) deliveries"))
        except sa.exc.SQLAlchemyError as exc:
            # the change itself is committed; tidying is a courtesy to the next claims
            log.warning("outbox.tidy_skipped", error=" ".join(str(exc).split())[:200])

    @_translated
    async def claim(
        self,
        owner: str,
        wants: Mapping[str, int],
        lease: float,
        spacing: Mapping[str, float] | None = None,
        due_by: dt.datetime | None = None,
    ) -> list[DeliveryRecord]:
        """Take due rows under a lease: up to ``wants[channel]`` of each channel. ``spacing``
        (scope -> seconds, e.g. ``{"fax.number": 120}``) are the per-recipient limits this
        worker enforces: rows to a recipient whose last letter is more recent are left for
        later. ``due_by``: queued rows count as due only if they were due then (a one-pass
        worker takes what was due when it started, not what it put back itself)."""
        now = utcnow()
        due = now if due_by is None else min(now, due_by)
        # Two picks, each able to walk an index in order and stop at ``limit``: leases that
        # ran out (a worker died; few rows), then queued rows that are due, oldest first. One
        # pick with an OR of both would make PostgreSQL gather and sort every due row.
        picks = [
            sa.select(D.id)
            .where(D.status == str(QStatus.IN_FLIGHT), D.lease_until < now)
            .order_by(D.lease_until),
            sa.select(D.id)
            .where(D.status == str(QStatus.QUEUED), D.next_attempt_at <= due)
            .order_by(D.next_attempt_at, D.id),
        ]
        slot_busy: Any = None
        if spacing:
            # Rows to a recipient whose send slot is taken (one fax per number every two
            # minutes) are left for later instead of being claimed only to be put back.
            recent = sa.or_(
                *(
                    sa.and_(S.scope == scope, S.last_sent_at > now - dt.timedelta(seconds=gap))
                    for scope, gap in spacing.items()
                )
            )
            slot_busy = sa.select(S.key).where(S.key == sa.func.lower(D.recipient), recent).exists()
        claimed: list[DeliveryRecord] = []
        async with self._one_writer(), self.engine.begin() as conn:
            # Channel by channel, so the due index (status, channel, next_attempt_at, id) is
            # walked per channel: a backlog of faxes waiting for their numbers never stands
            # between a worker and the emails behind it.
            for channel, limit in wants.items():
                taken = 0
                while taken < limit:
                    got, held_some = await self._pick(
                        conn, picks, channel, limit - taken, slot_busy, owner, now, lease
                    )
                    claimed += got
                    taken += len(got)
                    # again while rows taken were held instead (they are no longer due): a
                    # worker is not handed fewer rows than are due, nor ends a pass early
                    if not held_some:
                        break
        return claimed

    async def _pick(
        self,
        conn: AsyncConnection,
        picks: list[Any],
        channel: str,
        wanted: int,
        slot_busy: Any,
        owner: str,
        now: dt.datetime,
        lease: float,
    ) -> tuple[list[DeliveryRecord], bool]:
        """One pass of the claim's picks for ``channel``, up to ``wanted`` rows: the rows
        taken (those to a held official are held instead, and left out), and whether any
        were held."""
        taken: list[DeliveryRecord] = []
        held_some = False
        for base in picks:
            want = wanted - len(taken)
            if want <= 0:
                break
            pick = base.where(D.channel == channel)
            if slot_busy is not None:
                pick = pick.where(~slot_busy)
            pick = pick.limit(want)
            if self.dialect == "postgresql":
                pick = pick.with_for_update(skip_locked=True)
            stmt = (
                deliveries.update()
                .where(D.id.in_(pick.scalar_subquery()))
                .values(
                    status=str(QStatus.IN_FLIGHT),
                    lease_owner=owner,
                    lease_until=now + dt.timedelta(seconds=lease),
                    updated_at=now,
                )
                .returning(*deliveries.c)
            )
            got = [DeliveryRecord.of(r) for r in (await conn.execute(stmt)).mappings()]
            kept = await self._hold_what_is_held(conn, got) if got else got
            held_some = held_some or len(kept) < len(got)
            taken += kept
        return taken, held_some

    async def _hold_what_is_held(
        self, conn: AsyncConnection, claimed: list[DeliveryRecord]
    ) -> list[DeliveryRecord]:
        """Of rows just claimed, hold those to an official the outbox holds (a letter that
        went back to the queue after the hold was placed, or was added as it was placed, or
        was left in flight by a worker that died) instead of delivering them; returns the
        others. Checking the few rows claimed keeps the claim itself a walk down the due
        index, whatever the holds."""
        holding = await self._held(conn, (r.campaign_id for r in claimed))
        if not holding:
            return claimed
        kept: list[DeliveryRecord] = []
        now = utcnow()
        for r in claimed:
            hold = _hold_for(holding, r.campaign_id, r.target_slug, r.channel)
            if hold is None:
                kept.append(r)
                continue
            await conn.execute(
                deliveries.update()
                .where(D.id == r.id)
                .values(**_held_values(hold, now), lease_owner=None, lease_until=None)
            )
        return kept

    @_translated
    async def take_slots(self, wants: Sequence[tuple[str, str, float]]) -> dt.datetime | None:
        """Take a send slot for every ``(scope, key, spacing seconds)``, all or none.

        Returns None when they were taken (send now), or when the busiest of them is free
        again. A slot is taken with one conditional UPDATE ("the last letter went at least
        ``spacing`` ago"): on PostgreSQL a concurrent worker waits for the row lock and then
        finds the condition false, on SQLite writers are serialised, so a per-recipient limit
        holds across every worker.
        """
        if not wants:
            return None
        now = utcnow()
        try:
            async with self.engine.begin() as conn:
                for scope, key, spacing in wants:
                    gap = dt.timedelta(seconds=spacing)
                    await conn.execute(
                        self._insert(send_slots)
                        .values(scope=scope, key=key, last_sent_at=_NEVER)
                        .on_conflict_do_nothing(index_elements=["scope", "key"])
                    )
                    taken = await conn.execute(
                        send_slots.update()
                        .where(S.scope == scope, S.key == key, S.last_sent_at <= now - gap)
                        .values(last_sent_at=now)
                    )
                    if taken.rowcount == 0:
                        last = (
                            await conn.execute(
                                sa.select(S.last_sent_at).where(S.scope == scope, S.key == key)
                            )
                        ).scalar_one()
                        raise _SlotBusy(last + gap)  # rolls back the slots taken before it
        except _SlotBusy as busy:
            return busy.free_at
        return None

    def writer(self, owner: str) -> OutcomeWriter:
        """Writes the outcomes of rows ``owner`` holds (a row taken over meanwhile is left),
        over one connection it keeps (see OutcomeWriter)."""
        return OutcomeWriter(self.engine, owner, self._writing)

    @_translated
    async def release(self, owner: str, ids: Sequence[int]) -> int:
        """Give rows back to the queue untouched (a worker stopping before it sent them)."""
        if not ids:
            return 0
        stmt = (
            deliveries.update()
            .where(D.id.in_(list(ids)), D.lease_owner == owner, D.status == str(QStatus.IN_FLIGHT))
            .values(
                status=str(QStatus.QUEUED), lease_owner=None, lease_until=None, updated_at=utcnow()
            )
        )
        async with self.engine.begin() as conn:
            return int((await conn.execute(stmt)).rowcount)

    @_translated
    async def end_leases_of_gone_owners(self) -> int:
        """End the leases of owners that are processes of this machine and have ended (see
        ``owners``), so their rows are claimed now rather than when the leases run out.
        Returns how many rows were freed."""
        now = utcnow()
        live = sa.and_(D.status == str(QStatus.IN_FLIGHT), D.lease_until >= now)
        async with self.engine.begin() as conn:
            holders = (await conn.execute(sa.select(D.lease_owner).where(live).distinct())).all()
            gone = [o for (o,) in holders if o is not None and is_gone(o)]
            if not gone:
                return 0
            freed = (
                await conn.execute(
                    deliveries.update()
                    .where(live, D.lease_owner.in_(gone))
                    .values(lease_until=now - dt.timedelta(seconds=1), updated_at=now)
                )
            ).rowcount
        log.info("outbox.leases_of_gone_owners_ended", owners=len(gone), rows=freed)
        return int(freed)

    @_translated
    async def renew(self, owner: str, lease: float) -> None:
        """Extend the lease on every row this worker still holds. On PostgreSQL a row locked
        right now (its outcome being written by this same worker) is left alone: that write
        locks its rows in another order, and waiting for it could deadlock."""
        mine = sa.select(D.id).where(D.lease_owner == owner, D.status == str(QStatus.IN_FLIGHT))
        if self.dialect == "postgresql":
            mine = mine.with_for_update(skip_locked=True)
        stmt = (
            deliveries.update()
            .where(D.id.in_(mine.scalar_subquery()))
            .values(lease_until=utcnow() + dt.timedelta(seconds=lease))
        )
        async with self.engine.begin() as conn:
            await conn.execute(stmt)

    @_translated
    async def pending(
        self, channels: Sequence[str], *, queued_only: bool = False
    ) -> tuple[int, dt.datetime | None]:
        """How many rows are still to be worked on (queued or in flight; ``queued_only``:
        waiting in the queue), and when the next one is due."""
        live = (
            [str(QStatus.QUEUED)] if queued_only else [str(QStatus.QUEUED), str(QStatus.IN_FLIGHT)]
        )
        stmt = sa.select(sa.func.count(), sa.func.min(D.next_attempt_at)).where(
            D.status.in_(live), D.channel.in_(list(channels))
        )
        async with self.engine.connect() as conn:
            n, first = (await conn.execute(stmt)).one()
        return int(n), first

    @_translated
    async def purge(self, days: float, *, scrub: bool = False) -> int:
        """Erase personal data from deliveries that finished more than ``days`` ago.

        The rows stay, with the supporter's keyed address hash, so totals and the number of
        distinct supporters who acted survive. The letter's hash goes too: with the delivery
        key it would let anyone holding a list of addresses and the letter text test them.

        When anything was erased (or ``scrub``), what the database keeps of the old row
        versions is wiped as well (``_scrub``), so no copy stays readable in its files."""
        cutoff = utcnow() - dt.timedelta(days=days)
        stmt = (
            deliveries.update()
            .where(
                D.status.in_([str(s) for s in FINAL]),
                D.finished_at <= cutoff,
                D.purged_at.is_(None),
            )
            .values(
                supporter_name=None,
                supporter_email=None,
                supporter_city=None,
                supporter_country=None,
                letter_text=None,
                letter_hash="",
                # a server's reply may quote the supporter ("<alex@example.org> rejected");
                # the kind and code of the error stay
                last_error=None,
                purged_at=utcnow(),
            )
        )
        # appeals from the supporters' page: their author's data goes after the same time
        appeals_stmt = (
            appeals.update()
            .where(A.created_at <= cutoff, A.purged_at.is_(None))
            .values(
                supporter_name=None,
                supporter_email=None,
                supporter_city=None,
                supporter_country=None,
                letter_text=None,
                purged_at=utcnow(),
            )
        )
        # the ids of fax callback events taken (to know a replay) go after the same time, but
        # no sooner than a day: a gateway's own retries of one event come within hours, and a
        # replay after that finds the fax's state final and changes nothing anyway
        events_cutoff = min(cutoff, utcnow() - dt.timedelta(days=1))
        events_stmt = fax_event_ids.delete().where(fax_event_ids.c.received_at <= events_cutoff)
        async with self.engine.begin() as conn:
            erased = int((await conn.execute(stmt)).rowcount)
            erased_appeals = int((await conn.execute(appeals_stmt)).rowcount)
            await conn.execute(events_stmt)
        if erased or erased_appeals or scrub:
            await self._scrub()
        return erased

    async def _scrub(self) -> None:
        """Wipe the old versions of erased rows from the database's files.

        SQLite: every outbox connection runs with ``secure_delete`` (``outbox.db``), so freed
        cells and pages are zeroed as they are freed; the older page images still in the
        write-ahead log go with a ``TRUNCATE`` checkpoint, which copies the newest pages into
        the database file and empties the log. It waits a little for other processes' reads
        to end; should one keep reading an older snapshot, a warning says so and ``queue
        purge`` (which always wipes) clears the log later.

        PostgreSQL: an UPDATE leaves the old row versions in the table's pages, and a plain
        VACUUM only marks their space free, leaving the bytes. ``VACUUM FULL`` writes the table,
        its TOAST table and its indexes anew and drops the old files (personal columns have no
        planner statistics, see migration 0003, so ``pg_statistic`` holds no sample of them;
        it is rewritten too, for those an older version gathered). It locks the table while
        it runs (about a second per 100,000 deliveries), so workers wait meanwhile. Copies in
        the server's write-ahead log, replicas and backups are outside its reach.
        """
        try:
            async with self.engine.connect() as conn:
                auto = await conn.execution_options(isolation_level="AUTOCOMMIT")
                if self.dialect == "sqlite":
                    await auto.execute(sa.text(f"PRAGMA busy_timeout={_CHECKPOINT_WAIT_MS}"))
                    try:
                        for _ in range(_SCRUB_TRIES):
                            checkpoint = sa.text("PRAGMA wal_checkpoint(TRUNCATE)")
                            busy, *_ = (await auto.execute(checkpoint)).one()
                            if not busy:
                                return
                    finally:
                        await auto.execute(sa.text(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}"))
                    log.warning(
                        "outbox.scrub_incomplete",
                        reason="another process kept reading; the write-ahead log keeps old "
                        "copies of the erased rows until `queue purge` runs again",
                    )
                elif self.dialect == "postgresql":
                    await auto.execute(sa.text(f"SET lock_timeout = '{_VACUUM_LOCK_WAIT}'"))
                    try:
                        kept = await _vacuum_full(auto)
                        for _ in range(_VACUUM_TRIES):
                            if not kept:
                                break
                            await asyncio.sleep(_VACUUM_PAUSE)
                            kept = await _vacuum_full(auto)
                        if kept:
                            log.warning(
                                "outbox.scrub_incomplete",
                                reason=f"{kept} old row versions stay in the table's files: "
                                "a transaction still open on the server may see them; "
                                "`queue purge` wipes them once it has ended",
                            )
                        # statistics of erased columns dropped by the migration to 0003 (a
                        # user that does not own the database is told it may not, no error)
                        await auto.execute(sa.text("VACUUM FULL pg_statistic"))
                    finally:
                        await auto.execute(sa.text("RESET lock_timeout"))
        except sa.exc.SQLAlchemyError as exc:
            # the erasing itself is committed; `queue purge` tries the wiping again
            log.warning("outbox.scrub_incomplete", error=" ".join(str(exc).split())[:200])

    # --- adding letters ---

    @_translated
    async def add_deliveries(
        self, campaign: Campaign, batches: Iterable[Sequence[NewDelivery]]
    ) -> tuple[int, int]:
        """Store ``campaign`` (replacing the stored copy) and add every delivery of every
        batch, in one transaction: an exception raised while the batches are made (a bad
        CSV row) rolls all of it back. A key already in the outbox is left as it is.
        Returns how many deliveries were new, and how many of those wait held (their
        official is paused, or their address kept bouncing)."""
        key = self._supporter_key()
        now = utcnow()
        async with self.engine.begin() as conn:
            await self.put_campaign(conn, campaign)
            before = await self.count(conn, campaign_id=campaign.id)
            for batch in batches:
                await self.insert_rows(conn, [delivery_row(new, now, key) for new in batch])
            added = await self.count(conn, campaign_id=campaign.id) - before
            held = 0
            if added and await self._apply_holds(conn, campaign.id):
                # of the rows this add made (older rows held with them are not counted)
                held = await self.count(
                    conn, campaign_id=campaign.id, created_at=now, status=str(QStatus.HELD)
                )
        if added >= BULK:
            await self.tidy()
        return added, held

    # --- one-step sends ---

    @_translated
    async def reserve(
        self, appeal: Appeal, deliveries_: Sequence[Delivery], lease: float
    ) -> Reservation:
        """Look up, take over or add a send's deliveries (see the module text), under a
        lease of ``lease`` seconds."""
        found = Reservation(owner=new_owner("send"))
        mine = {d.key: d for d in deliveries_}
        if not mine:
            return found
        await self.end_leases_of_gone_owners()  # a send or worker here that was killed
        now = utcnow()
        until = now + dt.timedelta(seconds=lease)
        live_lease = sa.and_(D.status == str(QStatus.IN_FLIGHT), D.lease_until >= now)
        async with self.engine.begin() as conn:
            rows = await conn.execute(
                sa.select(D.key, D.status, D.provider_ref, D.lease_until).where(
                    D.key.in_(list(mine))
                )
            )
            before: dict[str, str] = {}
            for key, status, ref, lease_until in rows.all():
                held = status in (QStatus.HELD, QStatus.CANCELLED, QStatus.AMBIGUOUS)
                leased = status == QStatus.IN_FLIGHT and (lease_until or now) >= now
                if status == QStatus.SENT:
                    found.earlier[key] = ref or ""
                elif held or leased:
                    found.busy[key] = _NOT_MINE[status]
                    if leased and lease_until is not None:
                        found.busy[key] += (
                            f" (if that process was stopped, the delivery is free again at "
                            f"{lease_until:%H:%M:%S} UTC)"
                        )
                else:
                    before[key] = status
            holding = await self._held(conn, [appeal.campaign.id])

            def hold_of(d: Delivery) -> Any:
                return _hold_for(holding, appeal.campaign.id, d.slug, d.channel)

            for key in [k for k in before if hold_of(mine[k]) is not None]:
                # waiting in the outbox for an official held since: held with the others
                hold = hold_of(mine[key])
                await conn.execute(
                    deliveries.update()
                    .where(D.key == key, D.status.in_(_TAKEABLE), ~live_lease)
                    .values(**_held_values(hold, now))
                )
                found.busy[key] = _hold_words(hold)
                del before[key]
            if before:
                # The same conditions again in the UPDATE: a row another process took since the
                # SELECT stays with it (PostgreSQL re-checks them on the locked row).
                taken = await conn.execute(
                    deliveries.update()
                    .where(
                        D.key.in_(list(before)),
                        D.status.in_(_TAKEABLE),
                        ~live_lease,
                    )
                    .values(
                        status=str(QStatus.IN_FLIGHT),
                        lease_owner=found.owner,
                        lease_until=until,
                        updated_at=now,
                    )
                    .returning(D.key)
                )
                got = {k for (k,) in taken.all()}
                found.taken = {k: before[k] for k in got}
                for k in set(before) - got:
                    found.busy[k] = _NOT_MINE[str(QStatus.IN_FLIGHT)]
            new = [k for k in mine if k not in found.earlier and k not in found.busy]
            new = [k for k in new if k not in found.taken]
            if new:
                # Not in the outbox yet: add them in flight under this send's lease, so the same
                # send started twice cannot deliver them twice. A key another process added
                # since the SELECT is not inserted again, and is left to it.
                await self.put_campaign(conn, appeal.campaign, replace=False)
                rows_new = []
                hash_key = self._supporter_key()
                kept: dict[str, str] = {}
                for k in new:
                    d = mine[k]
                    row = delivery_row(
                        NewDelivery(appeal.campaign.id, appeal.supporter, d, appeal.letter, now),
                        now,
                        hash_key,
                    )
                    hold = hold_of(d)
                    if hold is None:
                        row.update(
                            status=str(QStatus.IN_FLIGHT),
                            lease_owner=found.owner,
                            lease_until=until,
                        )
                    else:
                        # kept in the outbox, held with the others, until `queue release`
                        row.update(_held_values(hold, now))
                        kept[k] = _hold_words(hold)
                    rows_new.append(row)
                added = await self.insert_rows_returning_keys(conn, rows_new)
                for k in new:
                    if k in added and k in kept:
                        found.busy[k] = kept[k]
                    elif k in added:
                        found.taken[k] = ""
                    else:
                        found.busy[k] = _NOT_MINE[str(QStatus.IN_FLIGHT)]
        return found

    @contextlib.asynccontextmanager
    async def keep_lease(self, reservation: Reservation, lease: float) -> AsyncIterator[None]:
        """Renew a send's lease while it runs, as a worker does: a send that waits long for
        its rate limits keeps what it reserved, and one that dies lets it go within a lease."""
        if not reservation.taken:
            yield
            return

        async def renew() -> None:
            # at once first: reserving may have waited for a busy outbox since the lease was set
            while True:
                try:
                    await self.renew(reservation.owner, lease)
                except Exception as exc:  # the next renewal may succeed; sending goes on
                    log.warning("send.lease_not_renewed", error=str(exc))
                await asyncio.sleep(max(0.5, lease / 3))

        task = asyncio.create_task(renew())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    @_translated
    async def record(
        self,
        reservation: Reservation,
        done: Sequence[tuple[str, SendOutcome]],
        *,
        retry_delay: float,
        queue_retryable: bool = True,
    ) -> Recorded:
        """Write what a send did, ``(key, outcome)`` for each of its deliveries, to the rows it
        reserved. ``queue_retryable`` is False after Ctrl-C: the supporter stopped the run, so
        nothing is left queued for the worker."""
        now = utcnow()
        due = now + dt.timedelta(seconds=retry_delay)
        result = Recorded()
        writes: list[tuple[str, dict[str, Any] | None, int]] = []
        for key, o in done:
            if key not in reservation.taken:
                continue
            values = _final_values(o, now, due, queue_retryable)
            if values is None:
                # given back: a row the send added goes away; a taken one returns to its
                # status, except one taken from a lease that ran out, which goes back to the
                # queue
                before = reservation.taken[key]
                if before:
                    values = {
                        "status": str(QStatus.QUEUED) if before == QStatus.IN_FLIGHT else before
                    }
            elif values["status"] == QStatus.QUEUED:
                result.queued.append(o)
            writes.append((key, values, o.attempts))
        if not writes:
            return result
        mine = sa.and_(D.lease_owner == reservation.owner, D.status == str(QStatus.IN_FLIGHT))
        async with self.engine.begin() as conn:
            for key, values, attempts in writes:
                if values is None:
                    changed = await conn.execute(deliveries.delete().where(D.key == key, mine))
                else:
                    changed = await conn.execute(
                        deliveries.update()
                        .where(D.key == key, mine)
                        .values(
                            **values,
                            attempts=D.attempts + attempts,
                            lease_owner=None,
                            lease_until=None,
                            updated_at=now,
                        )
                    )
                if changed.rowcount == 0:
                    result.lost += 1
        result.due = due if result.queued else None
        return result

    # --- reports ---

    @_translated
    async def report(self, campaign: str) -> tuple[list[tuple[str, str, str, int]], int]:
        """(channel, target, status, count) rows, and the distinct supporters who acted."""
        stmt = (
            sa.select(D.channel, D.target_slug, D.status, sa.func.count())
            .where(D.campaign_id == campaign)
            .group_by(D.channel, D.target_slug, D.status)
            .order_by(D.channel, D.target_slug, D.status)
        )
        acted = sa.select(sa.func.count(sa.distinct(D.supporter_hash))).where(
            D.campaign_id == campaign, D.status == str(QStatus.SENT)
        )
        async with self.engine.connect() as conn:
            rows = [(r[0], r[1], r[2], int(r[3])) for r in (await conn.execute(stmt)).all()]
            n = int((await conn.execute(acted)).scalar_one())
        return rows, n

    # --- returned mail ---

    @_translated
    async def delivery_by_key_start(self, key_start: str, channel: str) -> DeliveryRecord | None:
        """The ``channel`` delivery whose key starts with ``key_start`` (the part of its key a
        bounce token, a returned Message-ID or a fax callback token carries), or None when
        none or more than one matches."""
        if not key_start or not all(c in "0123456789abcdef" for c in key_start):
            return None
        stmt = (
            sa.select(deliveries)
            .where(D.key.startswith(key_start, autoescape=True), D.channel == channel)
            .limit(2)
        )
        async with self.engine.connect() as conn:
            found = [DeliveryRecord.of(r) for r in (await conn.execute(stmt)).mappings()]
        return found[0] if len(found) == 1 else None

    @_translated
    async def record_returned(
        self, key: str, kind: Returned, *, code: str | None, text: str
    ) -> bool:
        """Record what came back for a sent email; False when it was recorded already (or
        the row is not one it applies to). A hard bounce makes the row ``bounced``; a soft one
        or an auto-reply is a note on a row that stays ``sent``."""
        now = utcnow()
        if kind == Returned.HARD:
            applies: sa.ColumnElement[bool] = D.status.in_(
                [str(QStatus.SENT), str(QStatus.AMBIGUOUS)]
            )
            values: dict[str, Any] = {"status": str(QStatus.BOUNCED), "finished_at": now}
        else:
            # a later note replaces an earlier one; the same one again changes nothing
            applies = sa.and_(
                D.status == str(QStatus.SENT),
                sa.or_(
                    D.error_kind.is_(None),
                    D.error_kind != str(kind),
                    D.last_error.is_(None),
                    D.last_error != text,
                ),
            )
            values = {}
        stmt = (
            deliveries.update()
            .where(D.key == key, applies)
            .values(
                **values,
                error_kind=str(kind),
                error_code=code,
                last_error=text,
                updated_at=now,
            )
        )
        async with self.engine.begin() as conn:
            return bool((await conn.execute(stmt)).rowcount)

    # --- fax status by callback ---

    @_translated
    async def record_fax_state(
        self,
        key: str,
        *,
        provider: str,
        fax_id: str,
        state: str,
        rank: int,
        detail: str | None = None,
        event_id: str | None = None,
    ) -> str:
        """Record what a gateway reported for a delivery's fax, in one transaction:
        ``"replayed"`` (nothing done) when the event id was taken before, ``"recorded"`` when
        the state is newer (a higher ``rank``) than the one recorded for that fax, else
        ``"unchanged"``."""
        now = utcnow()
        async with self.engine.begin() as conn:
            if event_id is not None:
                seen = await conn.execute(
                    self._insert(fax_event_ids)
                    .values(provider=provider, event_id=event_id, received_at=now)
                    .on_conflict_do_nothing(index_elements=["provider", "event_id"])
                )
                if seen.rowcount == 0:
                    return "replayed"
            ins = self._insert(fax_states).values(
                delivery_key=key,
                provider=provider,
                fax_id=fax_id,
                state=state,
                rank=rank,
                detail=detail,
                updated_at=now,
            )
            changed = await conn.execute(
                ins.on_conflict_do_update(
                    index_elements=["delivery_key", "fax_id"],
                    set_={
                        k: ins.excluded[k]
                        for k in ("provider", "state", "rank", "detail", "updated_at")
                    },
                    where=fax_states.c.rank < ins.excluded.rank,
                )
            )
            return "recorded" if changed.rowcount else "unchanged"

    @_translated
    async def fax_states(self, keys: Sequence[str]) -> dict[str, tuple[str, str]]:
        """Delivery key -> (fax id, state) of its fax the gateways reported on last."""
        if not keys:
            return {}
        F = fax_states.c
        stmt = (
            sa.select(F.delivery_key, F.fax_id, F.state)
            .where(F.delivery_key.in_(list(keys)))
            .order_by(F.updated_at)
        )
        async with self.engine.connect() as conn:
            # a later row (the fax sent most recently reported on) replaces an earlier one
            return {k: (f, s) for k, f, s in (await conn.execute(stmt)).all()}

    @_translated
    async def hold_dead_address(
        self, campaign: str, target: str, recipient: str, *, after: int, reason: str
    ) -> tuple[bool, int]:
        """When the official's address has bounced ``after`` times or more in the campaign,
        hold their email, with ``reason``: what is still queued, and what reaches the outbox
        later. Returns whether the hold is new, and how many queued emails it held (nothing
        below the threshold)."""
        email_to = sa.and_(D.campaign_id == campaign, D.target_slug == target, D.channel == "email")
        bounced = sa.select(sa.func.count()).where(
            email_to,
            D.status == str(QStatus.BOUNCED),
            sa.func.lower(D.recipient) == recipient.lower(),
        )
        async with self.engine.begin() as conn:
            if int((await conn.execute(bounced)).scalar_one()) < after:
                return False, 0
            new = await self._put_hold(
                conn, campaign, target, "email", Hold.DEAD_ADDRESS, reason, utcnow()
            )
            return new, await self._apply_holds(conn, campaign)

    @_translated
    async def returns(self, campaign: str) -> list[tuple[str, str, str, int, str]]:
        """(channel, target, what came back, count, the latest words) per official: the
        ``Returned`` kinds of a campaign's rows."""
        kinds = [str(k) for k in Returned]
        stmt = (
            sa.select(
                D.channel, D.target_slug, D.error_kind, sa.func.count(), sa.func.max(D.last_error)
            )
            .where(D.campaign_id == campaign, D.error_kind.in_(kinds))
            .group_by(D.channel, D.target_slug, D.error_kind)
            .order_by(D.channel, D.target_slug, D.error_kind)
        )
        async with self.engine.connect() as conn:
            return [
                (r[0], r[1], r[2], int(r[3]), r[4] or "") for r in (await conn.execute(stmt)).all()
            ]

    @_translated
    async def reported_actions(self, campaign: str) -> list[tuple[str, str, int]]:
        """(kind, target, count) of the actions supporters reported they took themselves."""
        stmt = (
            sa.select(SA.kind, SA.target_slug, sa.func.count())
            .where(SA.campaign_id == campaign)
            .group_by(SA.kind, SA.target_slug)
            .order_by(SA.kind, SA.target_slug)
        )
        async with self.engine.connect() as conn:
            return [(r[0], r[1], int(r[2])) for r in (await conn.execute(stmt)).all()]

    # --- the supporters' page ---

    @_translated
    async def add_appeal(
        self,
        row: Mapping[str, Any],
        campaign: Campaign | None = None,
        queue: Sequence[NewDelivery] = (),
    ) -> tuple[AppealRecord, bool]:
        """Store an appeal, and with ``queue`` its deliveries too (an appeal that needs no
        confirmation), in one transaction. One with the same ``idem_key`` already there is
        returned instead, and nothing is added. True when it is new. The supporter's keyed
        address hash is filled in here, under the outbox's key."""
        hashed = supporter_hash(row["supporter_email"], self._supporter_key())
        async with self._one_writer(), self.engine.begin() as conn:
            added = (
                (
                    await conn.execute(
                        self._insert(appeals)
                        .values(**row, supporter_hash=hashed)
                        .on_conflict_do_nothing(index_elements=["idem_key"])
                        .returning(*appeals.c)
                    )
                )
                .mappings()
                .first()
            )
            if added is None:
                found = (
                    (await conn.execute(sa.select(appeals).where(A.idem_key == row["idem_key"])))
                    .mappings()
                    .one()
                )
                return AppealRecord.of(found), False
            if queue and campaign is not None:
                await self._put_campaign_once(conn, campaign)
                key = self._supporter_key()
                now = utcnow()
                await self.insert_rows(conn, [delivery_row(n, now, key) for n in queue])
                await self._apply_holds(conn, campaign.id)
        return AppealRecord.of(added), True

    @contextlib.asynccontextmanager
    async def _one_writer(self) -> AsyncIterator[None]:
        """On SQLite, this process's writers (page submissions, a worker's claims and
        outcomes in the same process) take turns: two at once would have one wait in SQLite's
        busy handler, which sleeps up to 100 ms between looks."""
        if self.dialect != "sqlite":
            yield
            return
        async with self._writing:
            yield

    def _supporter_key(self) -> bytes:
        if self._hash_key is None:
            self._hash_key = supporter_key(self.settings)
        return self._hash_key

    async def _put_campaign_once(self, conn: AsyncConnection, campaign: Campaign) -> None:
        """Add a campaign the outbox does not have (never replacing the organisers' copy),
        once per process and campaign."""
        if campaign.id in self._put:
            return
        await self.put_campaign(conn, campaign, replace=False)
        self._put.add(campaign.id)

    @_translated
    async def appeal(self, appeal_id: str) -> AppealRecord | None:
        async with self.engine.connect() as conn:
            found = (
                (await conn.execute(sa.select(appeals).where(A.id == appeal_id))).mappings().first()
            )
        return AppealRecord.of(found) if found is not None else None

    @_translated
    async def appeal_by_idem(self, idem_key: str) -> AppealRecord | None:
        """The appeal stored under ``idem_key`` (the same appeal made before), if any."""
        async with self.engine.connect() as conn:
            found = (
                (await conn.execute(sa.select(appeals).where(A.idem_key == idem_key)))
                .mappings()
                .first()
            )
        return AppealRecord.of(found) if found is not None else None

    @_translated
    async def confirm_appeal(
        self, appeal_id: str, campaign: Campaign, new: Sequence[NewDelivery]
    ) -> bool:
        """Queue an unconfirmed appeal's deliveries and mark it confirmed, in one transaction.
        False (nothing done) when it was confirmed or cancelled already; a delivery key
        already in the outbox is left as it is."""
        now = utcnow()
        key = self._supporter_key()
        async with self.engine.begin() as conn:
            changed = await conn.execute(
                appeals.update()
                .where(A.id == appeal_id, A.state == "unconfirmed")
                .values(state="confirmed", confirmed_at=now)
            )
            if changed.rowcount == 0:
                return False
            await self._put_campaign_once(conn, campaign)
            await self.insert_rows(conn, [delivery_row(n, now, key) for n in new])
            await self._apply_holds(conn, campaign.id)
        return True

    @_translated
    async def deliveries_by_key(self, keys: Sequence[str]) -> list[DeliveryRecord]:
        if not keys:
            return []
        stmt = sa.select(deliveries).where(D.key.in_(list(keys))).order_by(D.id)
        async with self.engine.connect() as conn:
            return [DeliveryRecord.of(r) for r in (await conn.execute(stmt)).mappings()]

    @_translated
    async def cancel_appeal(self, appeal_id: str, keys: Sequence[str]) -> int | None:
        """Cancel an appeal and its queued or held deliveries, all or nothing: None when one
        of them is being delivered or has gone out already. Returns how many were cancelled."""
        now = utcnow()
        started = [s for s in QStatus if s not in (QStatus.QUEUED, QStatus.HELD, QStatus.CANCELLED)]
        async with self.engine.begin() as conn:
            pick = sa.select(D.status).where(D.key.in_(list(keys)))
            if self.dialect == "postgresql":
                pick = pick.with_for_update()
            statuses = set((await conn.execute(pick)).scalars())
            if statuses & {str(s) for s in started}:
                return None
            await conn.execute(appeals.update().where(A.id == appeal_id).values(state="cancelled"))
            changed = await conn.execute(
                deliveries.update()
                .where(
                    D.key.in_(list(keys)),
                    D.status.in_([str(QStatus.QUEUED), str(QStatus.HELD)]),
                )
                .values(status=str(QStatus.CANCELLED), updated_at=now, finished_at=now)
            )
        return int(changed.rowcount)

    @_translated
    async def add_action(self, appeal_id: str, campaign_id: str, kind: str, target: str) -> bool:
        """Record that a supporter did something by hand; False when they had said so."""
        async with self.engine.begin() as conn:
            added = await conn.execute(
                self._insert(supporter_actions)
                .values(
                    appeal_id=appeal_id,
                    campaign_id=campaign_id,
                    kind=kind,
                    target_slug=target,
                    created_at=utcnow(),
                )
                .on_conflict_do_nothing(index_elements=["appeal_id", "kind", "target_slug"])
                .returning(SA.id)
            )
            return added.first() is not None

    @_translated
    async def actions_of(self, appeal_id: str) -> list[tuple[str, str]]:
        """(kind, target) of what the author of an appeal reported doing."""
        stmt = sa.select(SA.kind, SA.target_slug).where(SA.appeal_id == appeal_id)
        async with self.engine.connect() as conn:
            return [(r[0], r[1]) for r in (await conn.execute(stmt)).all()]


class OutcomeWriter:
    """Writes one owner's outcomes, one transaction per call, over a connection it holds
    until closed; a connection that failed is dropped and the next call opens a new one.

    A worker commits every few letters (each SMTP connection waits until its last outcome is
    written before it sends the next letter), so a commit must cost little. On PostgreSQL
    the connection is kept, rather than taken from the pool and given back each time. On
    SQLite the commit, a fraction of a millisecond, is made with the standard ``sqlite3``
    module in the event loop's own thread, with the statement compiled once: through the
    async driver every statement is a hand-over to its thread and back, which on a busy
    machine costs milliseconds and held up every connection waiting for the commit. The
    write lock is never waited for in the event loop: while another transaction holds it,
    the writer sleeps a millisecond and tries again, for up to ``SQLITE_WAIT`` seconds."""

    SQLITE_WAIT = 30.0

    def __init__(self, engine: AsyncEngine, owner: str, turns: asyncio.Lock | None = None):
        self._engine = engine
        self._owner = owner
        #: on SQLite, taken while writing: the writes of one process take turns
        self._turns = turns or asyncio.Lock()
        self._conn: AsyncConnection | None = None
        self._sqlite: sqlite3.Connection | None = None
        self._sqlite_path = engine.url.database if engine.dialect.name == "sqlite" else None
        if self._sqlite_path is not None:
            compiled = _RECORD.compile(dialect=engine.dialect)
            self._sql = compiled.string
            self._fixed = dict(compiled.params)
            self._order = list(compiled.positiontup or ())
            # datetimes as the outbox's own driver stores them (text, in SQLAlchemy's format)
            to_text = sa.DateTime().dialect_impl(engine.dialect).bind_processor(engine.dialect)
            self._datetime: Callable[[Any], Any] = to_text or (lambda value: value)

    @_translated
    async def write(self, outcomes: Sequence[Outcome]) -> None:
        if not outcomes:
            return
        params = _record_params(self._owner, outcomes)
        try:
            if self._sqlite_path is not None:
                async with self._turns:
                    await self._write_sqlite(self._sqlite_path, params)
                return
            if self._conn is None:
                self._conn = await self._engine.connect()
            await self._conn.execute(_RECORD, params)
            await self._conn.commit()
        except BaseException:
            await self.close()
            raise

    async def _write_sqlite(self, path: str, params: list[dict[str, Any]]) -> None:
        rows = []
        for p in params:
            values = {**self._fixed, **p}
            rows.append(
                tuple(
                    self._datetime(v) if isinstance(v, dt.datetime) else v
                    for v in (values[name] for name in self._order)
                )
            )
        deadline = time.monotonic() + self.SQLITE_WAIT
        while True:
            if self._sqlite is None:
                conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
                sqlite_pragmas(conn, None)
                conn.execute("PRAGMA busy_timeout=0")  # never block the event loop
                self._sqlite = conn
            try:
                self._sqlite.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                if exc.sqlite_errorcode != sqlite3.SQLITE_BUSY or time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.001)  # another writer holds the lock: let it finish
                continue
            try:
                self._sqlite.executemany(self._sql, rows)
                self._sqlite.execute("COMMIT")
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    self._sqlite.execute("ROLLBACK")
                raise
            return

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):  # a connection that failed closes as it can
                await conn.close()
        raw, self._sqlite = self._sqlite, None
        if raw is not None:
            with contextlib.suppress(sqlite3.Error):
                raw.close()


#: the outcome of one row the owner holds; a row taken over meanwhile is left as it is
_RECORD = (
    deliveries.update()
    .where(
        D.id == sa.bindparam("_id"),
        D.lease_owner == sa.bindparam("_owner"),
        D.status == str(QStatus.IN_FLIGHT),
    )
    .values(
        status=sa.bindparam("_status"),
        attempts=sa.bindparam("_attempts"),
        next_attempt_at=sa.func.coalesce(sa.bindparam("_next"), D.next_attempt_at),
        last_error=sa.bindparam("_error"),
        error_kind=sa.bindparam("_kind"),
        error_code=sa.bindparam("_code"),
        provider_ref=sa.bindparam("_ref"),
        lease_owner=None,
        lease_until=None,
        updated_at=sa.bindparam("_now"),
        finished_at=sa.bindparam("_finished"),
    )
)


def _record_params(owner: str, outcomes: Sequence[Outcome]) -> list[dict[str, Any]]:
    now = utcnow()
    return [
        {
            "_id": o.id,
            "_owner": owner,
            "_status": str(o.status),
            "_attempts": o.attempts,
            "_next": o.next_attempt_at,
            "_error": o.error,
            "_kind": o.error_kind,
            "_code": o.code,
            "_ref": o.ref,
            "_now": now,
            "_finished": now if o.status in FINAL else None,
        }
        for o in outcomes
    ]


def _filter(stmt: Any, *, campaign: str | None, statuses: list[str], target: str | None) -> Any:
    if campaign is not None:
        stmt = stmt.where(D.campaign_id == campaign)
    if statuses:
        stmt = stmt.where(D.status.in_([str(s) for s in statuses]))
    if target is not None:
        stmt = stmt.where(D.target_slug == target)
    return stmt


def _final_values(o: SendOutcome, now: dt.datetime, due: dt.datetime, queue_retryable: bool) -> Any:
    """Column values for a delivery a send made, or None to give the row back as it was."""
    if o.status == Status.SENT and o.attempts > 0:
        return {
            "status": str(QStatus.SENT),
            "provider_ref": o.ref,
            "finished_at": now,
            "next_attempt_at": now,
            "last_error": None,
            "error_kind": None,
            "error_code": None,
        }
    if o.status != Status.FAILED or o.error_kind == FailureKind.STOP_CHANNEL:
        # not attempted, or this send's own account was refused: nothing about the delivery
        return None
    if o.retryable and queue_retryable:
        return {
            "status": str(QStatus.QUEUED),
            "provider_ref": None,
            "finished_at": None,
            "next_attempt_at": due,
            "last_error": o.error,
            "error_kind": o.error_kind,
            "error_code": o.code,
        }
    if not o.retryable and o.attempts > 0:
        # one that may have arrived is not "failed": a person checks it
        unclear = o.error_kind == FailureKind.AMBIGUOUS
        return {
            "status": str(QStatus.AMBIGUOUS if unclear else QStatus.FAILED),
            "provider_ref": o.ref if unclear else None,
            "finished_at": now,
            "next_attempt_at": now,
            "last_error": o.error,
            "error_kind": o.error_kind,
            "error_code": o.code,
        }
    return None
