"""What the outbox hands in and out, without SQLAlchemy: statuses, the delivery rows as plain
records, and the mapping between rows and the letters, supporters and deliveries they hold.

Importing this module loads no database library, so callers that only name statuses or build
rows (the CSV loader) start fast."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field, fields
from typing import Any

from ua_dispatch.campaign import Campaign
from ua_dispatch.channels import get_channel
from ua_dispatch.errors import InputError
from ua_dispatch.ids import supporter_hash
from ua_dispatch.letter import Letter, Supporter
from ua_dispatch.outbox.status import FINAL, QStatus
from ua_dispatch.outcome import Outcome as SendOutcome
from ua_dispatch.plan import Appeal, Delivery

__all__ = [
    "FINAL",
    "AppealRecord",
    "DeliveryRecord",
    "NewDelivery",
    "Outcome",
    "QStatus",
    "Recorded",
    "Reservation",
    "delivery_row",
    "utcnow",
]


def utcnow() -> dt.datetime:
    """Naive UTC: what every timestamp column holds."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


@dataclass(frozen=True, slots=True)
class DeliveryRecord:
    """One row of the outbox's deliveries, as read."""

    id: int
    key: str
    campaign_id: str
    supporter_name: str | None
    supporter_email: str | None
    supporter_city: str | None
    supporter_country: str | None
    supporter_hash: str
    target_slug: str
    channel: str
    recipient: str | None
    letter_text: str | None
    letter_hash: str
    language: str
    send_after: dt.datetime
    status: str
    attempts: int
    next_attempt_at: dt.datetime
    last_error: str | None
    error_kind: str | None
    error_code: str | None
    provider_ref: str | None
    lease_owner: str | None
    lease_until: dt.datetime | None
    created_at: dt.datetime
    updated_at: dt.datetime
    finished_at: dt.datetime | None
    purged_at: dt.datetime | None

    @classmethod
    def of(cls, mapping: Any) -> DeliveryRecord:
        return cls(**{name: mapping[name] for name in _FIELDS})

    def delivery(self, campaign: Campaign) -> Delivery:
        """The delivery this row stands for, with the campaign's address of today. Raises
        KeyError when the target left the campaign, InputError when it has no address."""
        target = campaign.target(self.target_slug)
        delivery = Delivery(
            self.channel, target, get_channel(self.channel).address_of(target), self.key
        )
        if delivery.to is None:
            raise InputError(f"{self.target_slug} has no {self.channel} address any more")
        return delivery

    def appeal(self, campaign: Campaign) -> Appeal:
        """The supporter's approved letter this row carries."""
        supporter = Supporter.model_construct(
            name=self.supporter_name or "",
            email=self.supporter_email or "",
            city=self.supporter_city,
            country=self.supporter_country,
        )
        letter = Letter(
            text=self.letter_text or "", language=self.language, source=f"delivery {self.id}"
        )
        return Appeal(campaign=campaign, letter=letter, supporter=supporter)


_FIELDS = tuple(f.name for f in fields(DeliveryRecord))


@dataclass(frozen=True, slots=True)
class NewDelivery:
    """A delivery to add to the outbox: one supporter's letter to one official by one channel."""

    campaign_id: str
    supporter: Supporter
    delivery: Delivery
    letter: Letter
    send_after: dt.datetime


def delivery_row(new: NewDelivery, now: dt.datetime, supporter_key: bytes) -> dict[str, Any]:
    """The row a new delivery is stored as (queued, due at ``send_after``)."""
    s, d, letter = new.supporter, new.delivery, new.letter
    return {
        "key": d.key,
        "campaign_id": new.campaign_id,
        "supporter_name": s.name,
        "supporter_email": s.email,
        "supporter_city": s.city,
        "supporter_country": s.country,
        "supporter_hash": supporter_hash(s.email, supporter_key),
        "target_slug": d.slug,
        "channel": d.channel,
        "recipient": d.to,
        "letter_text": letter.text,
        "letter_hash": letter.hash,
        "language": letter.language,
        "send_after": new.send_after,
        "next_attempt_at": new.send_after,
        "status": str(QStatus.QUEUED),
        "attempts": 0,
        "created_at": now,
        "updated_at": now,
    }


@dataclass(frozen=True)
class Outcome:
    """What a worker records for one claimed row."""

    id: int
    status: QStatus
    attempts: int
    next_attempt_at: dt.datetime | None = None
    error: str | None = None
    error_kind: str | None = None
    code: str | None = None
    ref: str | None = None


@dataclass
class Reservation:
    """What a one-step send holds in the outbox while it delivers."""

    owner: str = ""
    #: key -> provider reference, for deliveries an earlier run sent
    earlier: dict[str, str] = field(default_factory=dict)
    #: key -> why this run leaves it alone (another process has it, held, cancelled)
    busy: dict[str, str] = field(default_factory=dict)
    #: key -> the row's status before this send took it over ("" when the send added it)
    taken: dict[str, str] = field(default_factory=dict)

    def skip(self, key: str) -> bool:
        return key in self.earlier or key in self.busy


@dataclass
class Recorded:
    """What recording a one-step send's outcomes did."""

    #: deliveries left queued for the worker, and when it may try them
    queued: list[SendOutcome] = field(default_factory=list)
    due: dt.datetime | None = None
    #: deliveries whose row another process took over before the send could record them
    lost: int = 0


@dataclass(frozen=True, slots=True)
class AppealRecord:
    """An appeal made on the supporters' page, as stored (see ``models.appeals``)."""

    id: str
    idem_key: str
    campaign_id: str
    supporter_name: str | None
    supporter_email: str | None
    supporter_city: str | None
    supporter_country: str | None
    supporter_hash: str
    letter_text: str | None
    language: str
    channels: str
    delivery_keys: str
    state: str
    created_at: dt.datetime
    confirmed_at: dt.datetime | None
    purged_at: dt.datetime | None

    @classmethod
    def of(cls, mapping: Any) -> AppealRecord:
        return cls(**{name: mapping[name] for name in _APPEAL_FIELDS})

    @property
    def keys(self) -> list[str]:
        found: list[str] = json.loads(self.delivery_keys)
        return found


_APPEAL_FIELDS = tuple(f.name for f in fields(AppealRecord))
