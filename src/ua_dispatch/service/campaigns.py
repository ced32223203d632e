"""Campaign files: checking one, and making one from an Urgent Action document."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ua_dispatch.campaign import Campaign, load_campaign

if TYPE_CHECKING:
    # Named in annotations only: the outbox (SQLAlchemy), the worker, the CSV loader and the
    # fake servers are imported by the functions that use them, which keeps start-up fast.
    pass


@dataclass(frozen=True)
class CampaignCheck:
    campaign: Campaign
    #: its act-until day has passed
    closed: bool


def check_campaign(path: Path) -> CampaignCheck:
    """Validate a campaign file."""
    campaign = load_campaign(path)
    return CampaignCheck(campaign, closed=dt.date.today() > campaign.act_until)
