"""``send`` and the outbox: what went out is recorded, what could not finish is queued.

Before a one-step ``send`` delivers anything it reserves its deliveries in the outbox
(:func:`reserve`): one recorded as sent by an earlier run is not sent again; one a queue worker
holds right now is left to the worker; one waiting in the queue (queued, held, failed, cancelled
or expired) is taken over under a lease of the send's own, so no worker sends it meanwhile.
After the run (:func:`record`) every sent delivery is recorded, and a delivery whose
in-process retry budget was spent on transient failures (a greylisting server, a busy fax
line) is left queued, due after ``queue_retry_delay``, for the worker to try again with the same
delivery key (and so the same Message-ID). ``report`` counts one-step appeals with the
organizers' ones.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from ua_dispatch.engine import Prepared
from ua_dispatch.outcome import Outcome
from ua_dispatch.plan import Appeal, Status
from ua_dispatch.queue.loader import delivery_row
from ua_dispatch.queue.models import QStatus, deliveries
from ua_dispatch.queue.store import Store, utcnow
from ua_dispatch.settings import Settings

D = deliveries.c


@dataclass
class Reservation:
    owner: str = ""
    #: key -> provider reference, for deliveries an earlier run sent
    earlier: dict[str, str] = field(default_factory=dict)
    #: keys a queue worker is delivering at this moment
    busy: set[str] = field(default_factory=set)
    #: key -> the row's status before this send took it over
    taken: dict[str, str] = field(default_factory=dict)

    def skip(self, key: str) -> bool:
        return key in self.earlier or key in self.busy


def _send_lease(settings: Settings) -> dt.timedelta:
    """Long enough for a send to finish its retries and follow a fax to its end."""
    seconds = settings.retry_max_total + settings.fax_poll_timeout + 60.0
    return dt.timedelta(seconds=max(settings.worker_lease, seconds))


async def reserve(settings: Settings, prepared: Sequence[Prepared]) -> Reservation:
    """Look up and take over this send's deliveries in the outbox (see the module text)."""
    owner = f"send:{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    found = Reservation(owner=owner)
    keys = [p.delivery.key for p in prepared if p.payload is not None]
    if not keys:
        return found
    now = utcnow()
    live_lease = sa.and_(D.status == str(QStatus.IN_FLIGHT), D.lease_until >= now)
    store = await Store.open(settings)
    try:
        async with store.engine.begin() as conn:
            rows = await conn.execute(
                sa.select(D.key, D.status, D.provider_ref, D.lease_until).where(D.key.in_(keys))
            )
            before: dict[str, str] = {}
            for key, status, ref, lease_until in rows.all():
                if status == QStatus.SENT:
                    found.earlier[key] = ref or ""
                elif status == QStatus.IN_FLIGHT and lease_until is not None and lease_until >= now:
                    found.busy.add(key)
                else:
                    before[key] = status
            if before:
                # The same conditions again in the UPDATE: a worker that claimed a row since
                # the SELECT keeps it (PostgreSQL re-checks them on the locked row).
                taken = await conn.execute(
                    deliveries.update()
                    .where(D.key.in_(list(before)), D.status != str(QStatus.SENT), ~live_lease)
                    .values(
                        status=str(QStatus.IN_FLIGHT),
                        lease_owner=owner,
                        lease_until=now + _send_lease(settings),
                        updated_at=now,
                    )
                    .returning(D.key)
                )
                got = {k for (k,) in taken.all()}
                found.taken = {k: before[k] for k in got}
                found.busy |= set(before) - got
    finally:
        await store.close()
    return found


def _final_values(o: Outcome, now: dt.datetime, due: dt.datetime, queue_retryable: bool) -> Any:
    """Column values for a delivery this send made, or None to leave it as it was."""
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
    if o.status == Status.FAILED and o.retryable and queue_retryable:
        return {
            "status": str(QStatus.QUEUED),
            "provider_ref": None,
            "finished_at": None,
            "next_attempt_at": due,
            "last_error": o.error,
            "error_kind": o.error_kind,
            "error_code": o.code,
        }
    if o.status == Status.FAILED and not o.retryable and o.attempts > 0:
        return {
            "status": str(QStatus.FAILED),
            "provider_ref": None,
            "finished_at": now,
            "next_attempt_at": now,
            "last_error": o.error,
            "error_kind": o.error_kind,
            "error_code": o.code,
        }
    return None


async def record(
    settings: Settings,
    appeal: Appeal,
    prepared: Sequence[Prepared],
    outcomes: Sequence[Outcome],
    reservation: Reservation,
    *,
    queue_retryable: bool = True,
) -> tuple[list[Outcome], dt.datetime | None]:
    """Write what this send did; returns the deliveries left queued for the worker and when
    it may try them. ``queue_retryable`` is False after Ctrl-C: the supporter stopped the run,
    so nothing new is queued (rows it took over go back as they were)."""
    now = utcnow()
    due = now + dt.timedelta(seconds=settings.queue_retry_delay)
    new_rows: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    later: list[Outcome] = []
    for p, o in zip(prepared, outcomes, strict=True):
        key = p.delivery.key
        if p.payload is None or reservation.skip(key):
            continue
        values = _final_values(o, now, due, queue_retryable)
        if values is not None and values["status"] == QStatus.QUEUED:
            later.append(o)
        if key in reservation.taken:
            if values is None:  # not attempted, or stopped: give the row back as it was
                before = reservation.taken[key]
                values = {"status": QStatus.QUEUED if before == QStatus.IN_FLIGHT else before}
            updates.append({"_key": key, "_attempts": o.attempts, **values})
        elif values is not None and values["status"] != QStatus.FAILED:
            row = delivery_row(
                appeal.campaign.id, appeal.supporter, p.delivery, appeal.letter, now, now
            )
            row.update(values, attempts=o.attempts)
            new_rows.append(row)
    if not new_rows and not updates:
        return later, (due if later else None)
    store = await Store.open(settings)
    try:
        async with store.engine.begin() as conn:
            # the organizers' copy of the campaign, if any, is theirs: only add a missing one
            await store.put_campaign(conn, appeal.campaign, replace=False)
            await store.insert_rows(conn, new_rows)
            for u in updates:
                fields = {k: v for k, v in u.items() if not k.startswith("_")}
                await conn.execute(
                    deliveries.update()
                    .where(D.key == u["_key"], D.lease_owner == reservation.owner)
                    .values(
                        **fields,
                        attempts=D.attempts + u["_attempts"],
                        lease_owner=None,
                        lease_until=None,
                        updated_at=now,
                    )
                )
    finally:
        await store.close()
    return later, (due if later else None)
