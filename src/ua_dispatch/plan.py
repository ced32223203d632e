"""Planning: one delivery per channel and target, before anything is built or sent."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from ua_dispatch.campaign import Campaign, Target
from ua_dispatch.ids import delivery_key
from ua_dispatch.letter import Letter, Supporter


class Status(StrEnum):
    SENT = "sent"
    FAILED = "failed"
    DRAFTED = "drafted"
    SKIPPED = "skipped"


@dataclass(frozen=True)
class Appeal:
    """Everything a delivery is made from: the campaign, the approved letter and its author."""

    campaign: Campaign
    letter: Letter
    supporter: Supporter


@dataclass(frozen=True)
class Delivery:
    """One channel to one target. ``to`` is None when the target cannot be reached that way."""

    channel: str
    target: Target
    to: str | None
    key: str

    @property
    def skip_reason(self) -> str | None:
        return None if self.to else f"{self.target.slug} has no {self.channel} address"


def plan_deliveries(appeal: Appeal, channels: list[str]) -> list[Delivery]:
    """Deliveries in channel order, then campaign target order."""
    from ua_dispatch.channels import get_channel  # channels import plan types

    out: list[Delivery] = []
    for name in channels:
        channel = get_channel(name)
        for target in appeal.campaign.targets:
            out.append(
                Delivery(
                    channel=name,
                    target=target,
                    to=channel.address_of(target),
                    key=delivery_key(
                        campaign_id=appeal.campaign.id,
                        supporter_email=appeal.supporter.email,
                        target_slug=target.slug,
                        channel=name,
                        letter_hash=appeal.letter.hash,
                    ),
                )
            )
    return out
