"""Opening the outbox, for every part of the service."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ua_dispatch.settings import Settings

if TYPE_CHECKING:
    # Named in annotations only: the outbox loads SQLAlchemy, which open_outbox imports on first
    # use so that commands without an outbox start fast.
    from ua_dispatch.outbox.store import Outbox


async def open_outbox(settings: Settings) -> Outbox:
    """Open the outbox (the caller closes it)."""
    # SQLAlchemy loads with the outbox, on first use: every other command starts without it
    from ua_dispatch.outbox.store import Outbox

    return await Outbox.open(settings)
