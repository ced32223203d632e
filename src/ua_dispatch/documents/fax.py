"""The document a fax carries: the letter, after a cover page, within a sane page count."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ua_dispatch.campaign import Campaign, Target
from ua_dispatch.documents.pdf import PdfDocument, document_date, render_appeal_pdf
from ua_dispatch.errors import InputError
from ua_dispatch.letter import Supporter

if TYPE_CHECKING:
    from ua_dispatch.channels.base import BuildEnv
    from ua_dispatch.plan import Appeal, Delivery


@dataclass(frozen=True)
class FaxCover:
    """What the cover page of a fax says. Numbers are E.164 and printed in international form."""

    to_name: str
    to_fax: str
    from_name: str
    from_fax: str | None
    reference: str  # "UA 2/19 (EUR 46/9686/2019)"
    date: dt.date
    #: pages of the whole fax, cover included; None counts the rendered document
    pages: int | None = None
    to_title: str | None = None
    from_place: str | None = None
    subject: str | None = None


def fax_cover(
    target: Target,
    supporter: Supporter,
    campaign: Campaign,
    *,
    to_fax: str,
    date: dt.date,
    language: str,
    from_fax: str | None = None,
) -> FaxCover:
    return FaxCover(
        to_name=target.name,
        to_title=target.title,
        to_fax=to_fax,
        from_name=supporter.name,
        from_place=supporter.place,
        from_fax=from_fax,
        reference=f"{campaign.ua_number} ({campaign.reference})",
        subject=campaign.subject_for(language),
        date=date,
    )


def build_fax_document(
    appeal: Appeal, delivery: Delivery, env: BuildEnv, *, from_fax: str | None = None
) -> PdfDocument:
    """The PDF to fax for one delivery: cover page (when ``fax_cover_page``) and letter.

    Raises InputError naming the letter file when the fax would run past ``fax_max_pages``.
    """
    target = delivery.the_target
    to_fax = delivery.to or target.fax
    if to_fax is None:
        raise ValueError(f"cannot build a fax for {target.slug}: no fax number")
    settings = env.settings
    date = document_date(env.now)
    cover = None
    if settings.fax_cover_page:
        cover = fax_cover(
            target,
            appeal.supporter,
            appeal.campaign,
            to_fax=to_fax,
            date=date,
            language=appeal.letter.language,
            from_fax=from_fax,
        )
    doc = render_appeal_pdf(appeal, target, date=date, cover=cover)
    if doc.pages > settings.fax_max_pages:
        with_cover = ", cover page included" if cover is not None else ""
        raise InputError(
            f"too long to fax: {doc.pages} pages to {target.slug}{with_cover}; the limit is "
            f"{settings.fax_max_pages} (UA_DISPATCH_FAX_MAX_PAGES)",
            source=appeal.letter.source,
        )
    return doc
