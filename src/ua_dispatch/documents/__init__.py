"""Documents made from a rendered letter: printable letters and fax-ready PDFs.

They take plain values (the rendered letter, the target, the supporter, the campaign) and know
nothing of channels or deliveries. This module holds only the values they hand back, so that
naming them does not load the PDF library (:mod:`ua_dispatch.documents.pdf` does), and the
error a document raises about text no font can print.
"""

from __future__ import annotations

import datetime as dt
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

from ua_dispatch.documents.fonts import missing_sources
from ua_dispatch.errors import InputError


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


def _describe(char: str) -> str:
    category = unicodedata.category(char)
    kind = {"Co": ", a private-use character", "Cn": ", an unassigned code point"}.get(
        category, ", a surrogate" if category == "Cs" else ""
    )
    return f"{char!r} (U+{ord(char):04X}{kind})"


class UnprintableTextError(InputError):
    """Text holds characters no font of the document has a glyph for."""

    def __init__(self, chars: Sequence[str], *, source: str, field: str | None = None):
        self.chars = tuple(chars)
        shown = ", ".join(_describe(c) for c in self.chars[:5])
        more = f" and {len(self.chars) - 5} more" if len(self.chars) > 5 else ""
        absent = missing_sources()
        hint = f" (not installed here: {', '.join(absent)})" if absent else ""
        super().__init__(
            f"the PDF fonts cannot print {shown}{more}{hint}; replace or remove "
            f"{'it' if len(self.chars) == 1 else 'them'}",
            source=source,
            field=field,
        )
