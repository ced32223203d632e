"""``send`` hands what it could not finish to the queue.

A delivery whose in-process retry budget is spent on transient failures (a greylisting server,
a busy fax line) is written to the outbox, due after ``queue_retry_delay``, so the worker tries
again later with the same delivery key (and so the same Message-ID).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from ua_dispatch.engine import Prepared
from ua_dispatch.outcome import Outcome
from ua_dispatch.plan import Appeal, Status
from ua_dispatch.queue.loader import delivery_row
from ua_dispatch.queue.models import QStatus
from ua_dispatch.queue.store import Store, utcnow
from ua_dispatch.settings import Settings


async def queue_unfinished(
    settings: Settings,
    appeal: Appeal,
    prepared: Sequence[Prepared],
    outcomes: Sequence[Outcome],
) -> tuple[list[Outcome], dt.datetime | None]:
    """Queue the retryable failures; returns them and when the worker may try again."""
    later = [
        (p, o)
        for p, o in zip(prepared, outcomes, strict=True)
        if o.status == Status.FAILED and o.retryable
    ]
    if not later:
        return [], None
    now = utcnow()
    due = now + dt.timedelta(seconds=settings.queue_retry_delay)
    rows = []
    for p, o in later:
        row = delivery_row(
            appeal.campaign.id, appeal.supporter, p.delivery, appeal.letter, due, now
        )
        row.update(
            attempts=o.attempts,
            last_error=o.error,
            error_kind=o.error_kind,
            error_code=o.code,
            status=str(QStatus.QUEUED),
        )
        rows.append(row)
    store = await Store.open(settings)
    try:
        async with store.engine.begin() as conn:
            await store.put_campaign(conn, appeal.campaign)
            await store.insert_rows(conn, rows)
    finally:
        await store.close()
    return [o for _, o in later], due
