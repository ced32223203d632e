"""The document a fax carries: the letter, after a cover page, within a sane page count."""

from __future__ import annotations

import datetime as dt

from ua_dispatch.campaign import Campaign, Target
from ua_dispatch.documents import FaxCover, PdfDocument
from ua_dispatch.documents.pdf import render_letter_pdf
from ua_dispatch.errors import InputError
from ua_dispatch.letter import RenderedLetter, Supporter


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
    rendered: RenderedLetter,
    target: Target,
    supporter: Supporter,
    campaign: Campaign,
    *,
    to_fax: str,
    date: dt.date,
    cover_page: bool,
    max_pages: int,
    from_fax: str | None = None,
    source: str = "letter",
) -> PdfDocument:
    """The PDF to fax to ``target``: a cover page (when ``cover_page``), then the letter.

    Raises InputError naming ``source`` (the letter's file or row) when the fax would run past
    ``max_pages``.
    """
    cover = None
    if cover_page:
        cover = fax_cover(
            target,
            supporter,
            campaign,
            to_fax=to_fax,
            date=date,
            language=rendered.language,
            from_fax=from_fax,
        )
    doc = render_letter_pdf(
        rendered, target, supporter, campaign, date=date, cover=cover, source=source
    )
    if doc.pages > max_pages:
        with_cover = ", cover page included" if cover is not None else ""
        raise InputError(
            f"too long to fax: {doc.pages} pages to {target.slug}{with_cover}; the limit is "
            f"{max_pages} (UA_DISPATCH_FAX_MAX_PAGES)",
            source=source,
        )
    return doc
