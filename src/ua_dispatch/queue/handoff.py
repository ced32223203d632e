"""``send`` and the outbox: what went out is recorded, what could not finish is queued.

Before a one-step ``send`` delivers anything it reserves its deliveries in the outbox
(:func:`reserve`), all in one transaction:

- one recorded as sent by an earlier run is not sent again;
- one another process holds right now (a queue worker, or the same send started twice) is left
  to it;
- one the organizers hold or cancelled (the case changed) is not sent;
- one that ended ``ambiguous`` (it may have arrived) is not sent again until a person checked;
- one waiting in the queue (queued, failed, expired, or in flight under a lease that ran out) is
  taken over, and one not in the outbox yet is added, in flight under the send's own lease,
  so no worker and no second copy of the send delivers it meanwhile.

The send renews that lease while it runs (:func:`keep_lease`). Afterwards (:func:`record`) a
sent delivery is recorded as sent, a permanent failure as failed (as ambiguous when it may have
arrived), and one whose in-process retry
budget was spent on transient failures (a greylisting server, a busy fax line) is left queued,
due after ``queue_retry_delay``, for the worker to try again with the same delivery key (and so
the same Message-ID). What the send did not finish (Ctrl-C, its own account refused) is given
back as it was. ``report`` counts one-step appeals with the organizers' ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
import structlog

from ua_dispatch.delivery import FailureKind
from ua_dispatch.engine import Prepared
from ua_dispatch.outcome import Outcome
from ua_dispatch.plan import Appeal, Status
from ua_dispatch.queue.db import supporter_key
from ua_dispatch.queue.loader import delivery_row
from ua_dispatch.queue.models import QStatus, deliveries
from ua_dispatch.queue.owners import new_owner
from ua_dispatch.queue.store import Store, utcnow
from ua_dispatch.settings import Settings

D = deliveries.c
log = structlog.get_logger("ua_dispatch.send")

#: The lease a one-step send holds its deliveries under (capped by UA_DISPATCH_WORKER_LEASE),
#: renewed at once and then every third of it. Shorter than a worker's five minutes, so that a
#: send killed outright (the terminal closed) lets its deliveries go sooner; long enough that a
#: send that is alive keeps them through a renewal that waits up to 30 s for a busy outbox
#: (SQLite's busy timeout) and through the wait before its outcomes are recorded.
SEND_LEASE = 90.0


def send_lease(settings: Settings) -> float:
    return min(SEND_LEASE, settings.worker_lease)


#: why a reserved delivery is not sent by this run, by the row's status
_NOT_MINE = {
    str(QStatus.IN_FLIGHT): "another process (a queue worker, or this send started twice) is "
    "delivering it now; see `ua-dispatch queue list`",
    str(QStatus.HELD): "the organizers hold deliveries to this official; "
    "`ua-dispatch queue release` resumes them",
    str(QStatus.CANCELLED): "the organizers cancelled deliveries to this official",
    str(QStatus.AMBIGUOUS): "an earlier try may have delivered it and nobody could tell; "
    "check with the recipient, then `ua-dispatch queue retry --ambiguous` sends it again",
}


@dataclass
class Reservation:
    owner: str = ""
    #: key -> provider reference, for deliveries an earlier run sent
    earlier: dict[str, str] = field(default_factory=dict)
    #: key -> why this run leaves it alone (another process has it, held, cancelled)
    busy: dict[str, str] = field(default_factory=dict)
    #: key -> the row's status before this send took it over ("" when the send added it)
    taken: dict[str, str] = field(default_factory=dict)

    def skip(self, key: str) -> bool:
        return key in self.earlier or key in self.busy


async def reserve(settings: Settings, appeal: Appeal, prepared: Sequence[Prepared]) -> Reservation:
    """Look up, take over or add this send's deliveries in the outbox (see the module text)."""
    found = Reservation(owner=new_owner("send"))
    mine = {p.delivery.key: p for p in prepared if p.payload is not None}
    if not mine:
        return found
    store = await Store.open(settings)
    try:
        await store.end_leases_of_gone_owners()  # a send or worker here that was killed
        now = utcnow()
        until = now + dt.timedelta(seconds=send_lease(settings))
        live_lease = sa.and_(D.status == str(QStatus.IN_FLIGHT), D.lease_until >= now)
        async with store.engine.begin() as conn:
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
            if before:
                # The same conditions again in the UPDATE: a row another process took since the
                # SELECT stays with it (PostgreSQL re-checks them on the locked row).
                taken = await conn.execute(
                    deliveries.update()
                    .where(
                        D.key.in_(list(before)),
                        D.status.in_(
                            [str(s) for s in (QStatus.QUEUED, QStatus.FAILED, QStatus.EXPIRED)]
                        )
                        | (D.status == str(QStatus.IN_FLIGHT)),
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
                await store.put_campaign(conn, appeal.campaign, replace=False)
                rows_new = []
                hash_key = supporter_key(settings)
                for k in new:
                    row = delivery_row(
                        appeal.campaign.id,
                        appeal.supporter,
                        mine[k].delivery,
                        appeal.letter,
                        now,
                        now,
                        hash_key,
                    )
                    row.update(
                        status=str(QStatus.IN_FLIGHT), lease_owner=found.owner, lease_until=until
                    )
                    rows_new.append(row)
                added = await store.insert_rows_returning_keys(conn, rows_new)
                for k in new:
                    if k in added:
                        found.taken[k] = ""
                    else:
                        found.busy[k] = _NOT_MINE[str(QStatus.IN_FLIGHT)]
    finally:
        await store.close()
    return found


@contextlib.asynccontextmanager
async def keep_lease(settings: Settings, reservation: Reservation) -> AsyncIterator[None]:
    """Renew the send's lease while it runs, as a worker does: a send that waits long for its
    rate limits keeps what it reserved, and one that dies lets it go within a lease."""
    if not reservation.taken:
        yield
        return
    store = await Store.open(settings)

    lease = send_lease(settings)

    async def renew() -> None:
        # at once first: reserving may have waited for a busy outbox since the lease was set
        while True:
            try:
                await store.renew(reservation.owner, lease)
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
        await store.close()


def _final_values(o: Outcome, now: dt.datetime, due: dt.datetime, queue_retryable: bool) -> Any:
    """Column values for a delivery this send made, or None to give the row back as it was."""
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


@dataclass
class Recorded:
    #: deliveries left queued for the worker, and when it may try them
    queued: list[Outcome] = field(default_factory=list)
    due: dt.datetime | None = None
    #: deliveries whose row another process took over before the send could record them
    lost: int = 0


async def record(
    settings: Settings,
    prepared: Sequence[Prepared],
    outcomes: Sequence[Outcome],
    reservation: Reservation,
    *,
    queue_retryable: bool = True,
) -> Recorded:
    """Write what this send did to the rows it reserved. ``queue_retryable`` is False after
    Ctrl-C: the supporter stopped the run, so nothing is left queued for the worker."""
    now = utcnow()
    due = now + dt.timedelta(seconds=settings.queue_retry_delay)
    done = Recorded()
    writes: list[tuple[str, dict[str, Any] | None, int]] = []
    for p, o in zip(prepared, outcomes, strict=True):
        key = p.delivery.key
        if key not in reservation.taken:
            continue
        values = _final_values(o, now, due, queue_retryable)
        if values is None:
            # given back: a row the send added goes away; a taken one returns to its status,
            # except one taken from a lease that ran out, which goes back to the queue
            before = reservation.taken[key]
            if before:
                values = {"status": str(QStatus.QUEUED) if before == QStatus.IN_FLIGHT else before}
        elif values["status"] == QStatus.QUEUED:
            done.queued.append(o)
        writes.append((key, values, o.attempts))
    if not writes:
        return done
    mine = sa.and_(D.lease_owner == reservation.owner, D.status == str(QStatus.IN_FLIGHT))
    store = await Store.open(settings)
    try:
        async with store.engine.begin() as conn:
            for key, values, attempts in writes:
                if values is None:
                    result = await conn.execute(deliveries.delete().where(D.key == key, mine))
                else:
                    result = await conn.execute(
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
                if result.rowcount == 0:
                    done.lost += 1
    finally:
        await store.close()
    done.due = due if done.queued else None
    return done
