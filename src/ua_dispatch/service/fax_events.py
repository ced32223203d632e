"""Fax status by callback: what Sinch and Telnyx post about a fax, checked and recorded.

A Telnyx webhook must carry a valid Ed25519 signature from a moment within the tolerance, and
an event id not taken before (the same event again is a replay). A Sinch callback must carry
the callback token of its delivery in its URL (``?token=``), and the fax it reports must be
that delivery's. Either way the delivery must be a fax in the outbox. What passes is
recorded as the fax's latest known state (:meth:`Outbox.record_fax_state`): an older state
never overwrites a newer one, and a final one stays. Polling by the fax transport stays the
way a fax is followed to its end; the recorded state is what the gateway said meanwhile.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import structlog

from ua_dispatch.channels.fax import DELIVERY_LABEL
from ua_dispatch.errors import ConfigError
from ua_dispatch.fax import sinch, telnyx
from ua_dispatch.fax.base import FaxStatus
from ua_dispatch.ids import callback_token_names
from ua_dispatch.outbox.db import callback_key
from ua_dispatch.outbox.store import Outbox
from ua_dispatch.settings import Settings

log = structlog.get_logger("ua_dispatch.fax_events")


class Refused(Exception):
    """A callback that changes nothing: ``status`` is the HTTP status to answer."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


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
        raise Refused(409, "this event was received before")
    log.info(
        "fax.callback",
        provider=provider,
        fax_id=status.id,
        state=str(status.state),
        outcome=outcome,
    )
    return Taken(outcome, str(status.state))


async def take_telnyx(
    outbox: Outbox,
    settings: Settings,
    body: bytes,
    headers: Mapping[str, str],
    *,
    now: float | None = None,
) -> Taken:
    """A Telnyx fax webhook: signature, freshness, event id, then the delivery it names."""
    try:
        own = settings.section(telnyx.TelnyxSettings)
    except ConfigError as exc:
        raise Refused(503, str(exc)) from None
    if own.public_key is None:
        raise Refused(403, "UA_DISPATCH_TELNYX_PUBLIC_KEY is not set: webhooks cannot be verified")
    try:
        telnyx.verify_webhook(
            own.public_key,
            body,
            headers.get("telnyx-signature-ed25519"),
            headers.get("telnyx-timestamp"),
            now=time.time() if now is None else now,
            tolerance=own.webhook_tolerance,
        )
    except telnyx.WebhookRefused as exc:
        raise Refused(401 if "no Telnyx" in str(exc) else 403, f"refused: {exc}") from None
    try:
        event = telnyx.parse_webhook(json.loads(body))
    except (ValueError, KeyError, TypeError) as exc:
        raise Refused(400, f"not a Telnyx fax event ({exc})") from None
    if event is None:
        return Taken("ignored")
    key = event.status.labels.get(DELIVERY_LABEL)
    found = await outbox.deliveries_by_key([key]) if key else []
    if not found or found[0].channel != "fax":
        raise Refused(404, "no fax delivery of ours carries this fax")
    return await _record(outbox, "telnyx", found[0].key, event.status, event.id)


async def take_sinch(outbox: Outbox, settings: Settings, token: str | None, body: Any) -> Taken:
    """A Sinch fax callback: the token names the delivery, the fax must be that delivery's."""
    if not token:
        raise Refused(401, "no callback token")
    delivery = await outbox.delivery_by_key_start(token.partition(".")[0].lower(), "fax")
    if delivery is None or not callback_token_names(token, delivery.key, callback_key(settings)):
        raise Refused(403, "this callback token names no fax of ours")
    try:
        status = sinch.parse_callback(body)
    except (ValueError, KeyError, TypeError) as exc:
        raise Refused(400, f"not a Sinch fax callback ({exc})") from None
    if status is None:
        return Taken("ignored")
    if status.labels.get(DELIVERY_LABEL, delivery.key) != delivery.key:
        raise Refused(403, "this callback token belongs to another fax")
    return await _record(outbox, "sinch", delivery.key, status, None)
