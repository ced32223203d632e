"""Planning: one delivery per channel and target, before anything is built or sent."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

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


@dataclass(frozen=True)
class Delivery:
    """One channel to one target, or to the whole campaign for channels that address every
    target at once (a post tagging all officials): then ``target`` is None.

    ``to`` is None when the delivery cannot be made that way (no address); ``skip_reason``
    then says why, in words."""

    channel: str
    target: Target | None
    to: str | None
    key: str
    skip_reason: str | None = None

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


class Addressing(Protocol):
    """What planning needs of a channel: where it reaches a target (or the whole campaign)."""

    @property
    def name(self) -> str: ...
    @property
    def campaign_wide(self) -> bool: ...
    @property
    def address_word(self) -> str: ...
    def address_of(self, target: Target) -> str | None: ...
    def campaign_address(self, campaign: Campaign) -> str | None: ...


def plan_deliveries(appeal: Appeal, channels: Sequence[Addressing]) -> list[Delivery]:
    """Deliveries in channel order, then campaign target order."""

    def key(slug: str, name: str) -> str:
        return delivery_key(
            campaign_id=appeal.campaign.id,
            supporter_email=appeal.supporter.email,
            target_slug=slug,
            channel=name,
            letter_hash=appeal.letter.hash,
        )

    out: list[Delivery] = []
    for channel in channels:
        name = channel.name
        if channel.campaign_wide:
            to = channel.campaign_address(appeal.campaign)
            why = None if to else f"no target has a {channel.address_word}"
            out.append(Delivery(name, None, to, key(CAMPAIGN_SCOPE, name), why))
            continue
        for target in appeal.campaign.targets:
            to = channel.address_of(target)
            why = None if to else f"{target.slug} has no {channel.address_word}"
            out.append(Delivery(name, target, to, key(target.slug, name), why))
    return out
