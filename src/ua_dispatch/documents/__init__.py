"""Documents made from a rendered letter: printable letters and fax-ready PDFs.

They take plain values (the rendered letter, the target, the supporter, the campaign) and know
nothing of channels or deliveries. This module holds only the values they hand back, so that
naming them does not load the PDF library (:mod:`ua_dispatch.documents.pdf` does).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass


@dataclass(frozen=True)
class PdfDocument:
    """A rendered PDF and its number of pages."""

    data: bytes
    pages: int


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
