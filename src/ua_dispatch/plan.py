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


CAMPAIGN_SCOPE = "campaign"
_ADDRESS_WORDS = {
    "email": "email address",
    "fax": "fax number",
    "phone": "phone number",
    "post": "postal address",
    "social": "social media account",
}


@dataclass(frozen=True)
class Delivery:
    """One channel to one target, or to the whole campaign for channels that address every
    target at once (a post tagging all officials): then ``target`` is None.

    ``to`` is None when the delivery cannot be made that way (no address)."""

    channel: str
    target: Target | None
    to: str | None
    key: str

    @property
    def slug(self) -> str:
        """The target's slug, or ``campaign`` for a campaign-wide delivery."""
        return self.target.slug if self.target is not None else CAMPAIGN_SCOPE

    @property
    def the_target(self) -> Target:
        """The target of a per-target delivery (channels that address one official)."""
        if self.target is None:
            raise ValueError(f"{self.channel} delivery is campaign-wide, not per target")
        return self.target

    @property
    def skip_reason(self) -> str | None:
        if self.to:
            return None
        what = _ADDRESS_WORDS.get(self.channel, f"{self.channel} address")
        if self.target is None:
            return f"no target has a {what}"
        return f"{self.target.slug} has no {what}"


def plan_deliveries(appeal: Appeal, channels: list[str]) -> list[Delivery]:
    """Deliveries in channel order, then campaign target order."""
    from ua_dispatch.channels import get_channel  # channels import plan types

    def key(slug: str, name: str) -> str:
        return delivery_key(
            campaign_id=appeal.campaign.id,
            supporter_email=appeal.supporter.email,
            target_slug=slug,
            channel=name,
            letter_hash=appeal.letter.hash,
        )

    out: list[Delivery] = []
    for name in channels:
        channel = get_channel(name)
        if channel.campaign_wide:
            to = channel.campaign_address(appeal.campaign)
            out.append(Delivery(name, None, to, key(CAMPAIGN_SCOPE, name)))
            continue
        for target in appeal.campaign.targets:
            out.append(Delivery(name, target, channel.address_of(target), key(target.slug, name)))
    return out
