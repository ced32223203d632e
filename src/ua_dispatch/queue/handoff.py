"""``send`` and the outbox: what went out is recorded, what could not finish is queued.

A one-step send reserves its deliveries in the outbox before it delivers anything
(:func:`reserve`), renews its lease while it runs (:func:`keep_lease`), and records what it did
afterwards (:func:`record`); the outbox's own rules are told in ``ua_dispatch.outbox.store``.
Each function uses the outbox it is given, or opens one for the call.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence

from ua_dispatch.engine import Prepared
from ua_dispatch.outbox.records import Recorded, Reservation
from ua_dispatch.outbox.store import Outbox
from ua_dispatch.outcome import Outcome
from ua_dispatch.plan import Appeal, Status
from ua_dispatch.settings import Settings

__all__ = ["SEND_LEASE", "Recorded", "Reservation", "keep_lease", "record", "reserve"]

#: The lease a one-step send holds its deliveries under (capped by UA_DISPATCH_WORKER_LEASE),
#: renewed at once and then every third of it. Shorter than a worker's five minutes, so that a
#: send killed outright (the terminal closed) lets its deliveries go sooner; long enough that a
#: send that is alive keeps them through a renewal that waits up to 30 s for a busy outbox
#: (SQLite's busy timeout) and through the wait before its outcomes are recorded.
SEND_LEASE = 90.0


def send_lease(settings: Settings) -> float:
    return min(SEND_LEASE, settings.worker_lease)


@contextlib.asynccontextmanager
async def _using(settings: Settings, outbox: Outbox | None) -> AsyncIterator[Outbox]:
    if outbox is not None:
        yield outbox
        return
    async with await Outbox.open(settings) as opened:
        yield opened


async def reserve(
    settings: Settings,
    appeal: Appeal,
    prepared: Sequence[Prepared],
    *,
    outbox: Outbox | None = None,
) -> Reservation:
    """Look up, take over or add this send's deliveries that have a payload."""
    mine = [p.delivery for p in prepared if p.payload is not None]
    if not mine:
        return Reservation()
    async with _using(settings, outbox) as box:
        return await box.reserve(appeal, mine, send_lease(settings))


@contextlib.asynccontextmanager
async def keep_lease(
    settings: Settings, reservation: Reservation, *, outbox: Outbox | None = None
) -> AsyncIterator[None]:
    """Renew the send's lease while it runs."""
    if not reservation.taken:
        yield
        return
    async with (
        _using(settings, outbox) as box,
        box.keep_lease(reservation, send_lease(settings)),
    ):
        yield


async def record(
    settings: Settings,
    prepared: Sequence[Prepared],
    outcomes: Sequence[Outcome],
    reservation: Reservation,
    *,
    queue_retryable: bool = True,
    outbox: Outbox | None = None,
) -> Recorded:
    """Write what this send did to the rows it reserved (``outcomes`` in ``prepared``'s
    order). ``queue_retryable`` is False after Ctrl-C: nothing is left queued."""
    done = [
        (p.delivery.key, o)
        for p, o in zip(prepared, outcomes, strict=True)
        if p.delivery.key in reservation.taken
    ]
    if not done:
        return Recorded()
    async with _using(settings, outbox) as box:
        return await box.record(
            reservation,
            done,
            retry_delay=settings.queue_retry_delay,
            queue_retryable=queue_retryable,
        )


def with_reserved(
    prepared: Sequence[Prepared], reserved: Reservation, sent_now: Sequence[Outcome]
) -> list[Outcome]:
    """Outcomes in plan order: this run's, 'sent' for what an earlier run sent and 'skipped'
    for what this run leaves alone."""
    rest = iter(sent_now)
    out = []
    for p in prepared:
        key = p.delivery.key
        if key in reserved.earlier:
            out.append(Outcome.for_delivery(p.delivery, Status.SENT, ref=reserved.earlier[key]))
        elif key in reserved.busy:
            out.append(Outcome.for_delivery(p.delivery, Status.SKIPPED, error=reserved.busy[key]))
        else:
            out.append(next(rest))
    return out
