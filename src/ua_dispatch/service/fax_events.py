"""Fax status by callback: what a gateway posts about a fax, checked and recorded.

The provider checks and reads the callback (:meth:`FaxProvider.read_callback`: a signature, or
the callback token of its delivery in its URL, ``?token=``). A token must name a fax delivery
in the outbox and the fax reported must be that delivery's; a signed event names its delivery
by the fax's labels. An event id must not have been taken before (the same event again is a
replay). What passes is recorded as the fax's latest known state
(:meth:`Outbox.record_fax_state`): an older state never overwrites a newer one, and a final one
stays. Polling by the fax transport stays the
way a fax is followed to its end; the recorded state is what the gateway said meanwhile.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

import structlog

from ua_dispatch.channels.fax import DELIVERY_LABEL
from ua_dispatch.fax.base import CallbackRefused, FaxProvider, FaxStatus
from ua_dispatch.ids import callback_token_names
from ua_dispatch.outbox.store import Outbox
from ua_dispatch.settings import Settings

log = structlog.get_logger("ua_dispatch.fax_events")


@dataclass(frozen=True)
class Taken:
    """What a callback did: ``recorded`` (a newer state), ``unchanged`` (an older or the same
    state) or ``ignored`` (an event about something else)."""

    outcome: str
    state: str | None = None


def _detail(status: FaxStatus) -> str:
    detail = status.detail()
    for name in ("error_type", "error_code", "error_message"):
        value = getattr(status, name)
        if value is not None:
            detail[name] = value
    return json.dumps(detail, ensure_ascii=False)


async def _record(
    outbox: Outbox, provider: str, key: str, status: FaxStatus, event_id: str | None
) -> Taken:
    outcome = await outbox.record_fax_state(
        key,
        provider=provider,
        fax_id=status.id,
        state=str(status.state),
        rank=status.state.rank,
        detail=_detail(status),
        event_id=event_id,
    )
    if outcome == "replayed":
        raise CallbackRefused(409, "this event was received before")
    log.info(
        "fax.callback",
        provider=provider,
        fax_id=status.id,
        state=str(status.state),
        outcome=outcome,
    )
    return Taken(outcome, str(status.state))


async def take(
    outbox: Outbox,
    settings: Settings,
    provider: type[FaxProvider],
    body: bytes,
    headers: Mapping[str, str],
    token: str | None,
    secret: bytes,
) -> Taken:
    """One status callback from ``provider``'s gateway: the provider checks and reads it,
    then the delivery it is about must be a fax of ours (``secret``: the callback tokens'
    key, :func:`~ua_dispatch.outbox.db.callback_key`). CallbackRefused when it is not
    taken."""
    event = provider.read_callback(body, headers, token, settings)
    if event.token is not None:
        # vouched for by the token in its URL: the delivery that token names, and its fax only
        start = event.token.partition(".")[0].lower()
        delivery = await outbox.delivery_by_key_start(start, "fax")
        if delivery is None or not callback_token_names(event.token, delivery.key, secret):
            raise CallbackRefused(403, "this callback token names no fax of ours")
        key = delivery.key
        if event.status is None:
            return Taken("ignored")
        # the fax must show it is this delivery's: by its label, else by the id the gateway
        # gave it when it was sent
        named = event.status.labels.get(DELIVERY_LABEL)
        known = delivery.provider_ref
        if named != key and not (named is None and known and event.status.id == known):
            raise CallbackRefused(403, "this callback token belongs to another fax")
    else:
        # checked by the provider (signed): the delivery its labels name
        if event.status is None:
            return Taken("ignored")
        named = event.status.labels.get(DELIVERY_LABEL)
        found = await outbox.deliveries_by_key([named]) if named else []
        if not found or found[0].channel != "fax":
            raise CallbackRefused(404, "no fax delivery of ours carries this fax")
        key = found[0].key
    return await _record(outbox, provider.name, key, event.status, event.event_id)
