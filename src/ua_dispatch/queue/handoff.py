"""``send`` and the outbox: what went out is recorded, what could not finish is queued.

A delivery whose in-process retry budget is spent on transient failures (a greylisting server,
a busy fax line) is written to the outbox, due after ``queue_retry_delay``, so the worker tries
again later with the same delivery key (and so the same Message-ID). A delivery that was sent
is recorded too, so running the same ``send`` again does not send it twice, and ``report``
counts one-step appeals with the organizers' ones.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import sqlalchemy as sa

from ua_dispatch.engine import Prepared
from ua_dispatch.outcome import Outcome
from ua_dispatch.plan import Appeal, Status
from ua_dispatch.queue.loader import delivery_row
from ua_dispatch.queue.models import QStatus, deliveries
from ua_dispatch.queue.store import Store, utcnow
from ua_dispatch.settings import Settings


async def queue_unfinished(
    settings: Settings,
    appeal: Appeal,
    prepared: Sequence[Prepared],
    outcomes: Sequence[Outcome],
    *,
    queue_retryable: bool = True,
) -> tuple[list[Outcome], dt.datetime | None]:
    """Record the sent deliveries and queue the retryable failures; returns the queued ones
    and when the worker may try again."""
    pairs = list(zip(prepared, outcomes, strict=True))
    later = [
        (p, o) for p, o in pairs if queue_retryable and o.status == Status.FAILED and o.retryable
    ]
    sent = [(p, o) for p, o in pairs if o.status == Status.SENT and o.attempts > 0]
    if not later and not sent:
        return [], None
    now = utcnow()
    due = now + dt.timedelta(seconds=settings.queue_retry_delay)
    rows = []
    for (p, o), status in [(x, QStatus.SENT) for x in sent] + [(x, QStatus.QUEUED) for x in later]:
        row = delivery_row(
            appeal.campaign.id,
            appeal.supporter,
            p.delivery,
            appeal.letter,
            now if status == QStatus.SENT else due,
            now,
        )
        # every row carries the same columns: one executemany for all of them
        row.update(
            status=str(status),
            attempts=o.attempts,
            provider_ref=o.ref if status == QStatus.SENT else None,
            finished_at=now if status == QStatus.SENT else None,
            last_error=None if status == QStatus.SENT else o.error,
            error_kind=None if status == QStatus.SENT else o.error_kind,
            error_code=None if status == QStatus.SENT else o.code,
        )
        rows.append(row)
    store = await Store.open(settings)
    try:
        async with store.engine.begin() as conn:
            await store.put_campaign(conn, appeal.campaign)
            await store.insert_rows(conn, rows)
            for p, o in sent:
                # queued by an earlier run and now sent by hand: the worker must not send it again
                await conn.execute(
                    sa.update(deliveries)
                    .where(
                        deliveries.c.key == p.delivery.key,
                        deliveries.c.status.in_(
                            [str(QStatus.QUEUED), str(QStatus.HELD), str(QStatus.FAILED)]
                        ),
                    )
                    .values(
                        status=str(QStatus.SENT),
                        provider_ref=o.ref,
                        finished_at=now,
                        attempts=deliveries.c.attempts + o.attempts,
                    )
                )
    finally:
        await store.close()
    return [o for _, o in later], (due if later else None)


async def sent_before(settings: Settings, prepared: Sequence[Prepared]) -> dict[str, str]:
    """Delivery keys among ``prepared`` that the outbox records as sent, with their refs."""
    keys = [p.delivery.key for p in prepared if p.payload is not None]
    if not keys:
        return {}
    store = await Store.open(settings)
    try:
        async with store.engine.connect() as conn:
            found = await conn.execute(
                sa.select(deliveries.c.key, deliveries.c.provider_ref).where(
                    deliveries.c.key.in_(keys), deliveries.c.status == str(QStatus.SENT)
                )
            )
            return {key: ref or "" for key, ref in found.all()}
    finally:
        await store.close()
