"""Campaign files: checking one, and making one from an Urgent Action document."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ua_dispatch.campaign import Campaign, check_sample_letter, load_campaign

if TYPE_CHECKING:
    # named in annotations only: the importer (and python-docx, pypdf with it) loads when a
    # document is imported, not when a campaign is checked
    from ua_dispatch.importer import ImportReport


@dataclass(frozen=True)
class CampaignCheck:
    campaign: Campaign
    #: its act-until day has passed
    closed: bool


def check_campaign(path: Path) -> CampaignCheck:
    """Validate a campaign file."""
    campaign = load_campaign(path)
    check_sample_letter(campaign, path)
    return CampaignCheck(campaign, closed=campaign.closed())


def import_campaign(
    document: Path, *, out: Path | None = None, campaign_id: str | None = None, force: bool = False
) -> ImportReport:
    """Make a campaign file (and its sample letter) from an Urgent Action document; nothing is
    written when the document cannot be read or names no official, or when the file exists
    and ``force`` is not given (InputError, one line naming the file)."""
    # the importer loads here, not with this module: checking a campaign stays quick
    from ua_dispatch.importer import import_campaign as run

    return run(document, out=out, campaign_id=campaign_id, force=force)
