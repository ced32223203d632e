"""Undoing what conversion to text leaves behind: ``[image: ...]`` and ``[bookmark: ...]``
markers, tabs, non-breaking and zero-width spaces, soft hyphens, curly quotes, the header and
footer a PDF repeats on every page, and paragraphs a PDF's layout broke into lines."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

from ua_dispatch.importer.labels import fold
from ua_dispatch.importer.read import Extracted


@dataclass(frozen=True)
class Line:
    """One line of the cleaned text and the line of the extracted text it starts on."""

    no: int
    text: str


_MARKER = re.compile(r"\[(?:image|bookmark|picture|imagen|figure)\s*:[^\]\n]*\]", re.I)
_INVISIBLE = re.compile("[\u00ad\u200b\u200c\u200d\u2060\ufeff]")
# control characters a conversion leaves (tabs are spacing, handled with the spaces)
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f]")
_SPACES = re.compile(r"[\s\u00a0\u2007\u202f]+")
_QUOTES = str.maketrans({"’": "'", "‘": "'", "“": '"', "”": '"', "„": '"', "«": '"', "»": '"'})
_PAGE_NUMBER = re.compile(r"^(?:page|pagina|p\.)?\s*\d{1,3}(?:\s*(?:of|de|sur|/)\s*\d{1,3})?$")
#: a line at least this share of the longest line's length was wrapped by the layout
_FULL = 0.75
_MIN_WRAP_WIDTH = 50


def clean_text(text: str) -> str:
    """One line's text without conversion artefacts, its spaces single."""
    text = _MARKER.sub("", text)
    text = _CONTROL.sub(" ", _INVISIBLE.sub("", text)).translate(_QUOTES)
    return _SPACES.sub(" ", text).strip()


def clean(doc: Extracted) -> list[Line]:
    """The document's lines, cleaned, numbered as in the extracted text."""
    numbered: list[list[Line]] = []
    no = 0
    for page in doc.pages:
        lines = []
        for raw in page:
            no += 1
            lines.append(Line(no, clean_text(raw)))
        numbered.append(lines)
    if doc.kind != "pdf":
        return [line for page in numbered for line in page]
    pages = _drop_running_lines(numbered)
    return _rejoin(pages)


def _key(text: str) -> str:
    return re.sub(r"\d+", "#", fold(text))


def _edges(page: list[Line]) -> list[Line]:
    filled = [ln for ln in page if ln.text]
    return filled[:2] + filled[-2:]


def _drop_running_lines(pages: list[list[Line]]) -> list[list[Line]]:
    """Without the lines repeated at the top or bottom of most pages, and page numbers."""
    counts: Counter[str] = Counter()
    for page in pages:
        counts.update({_key(ln.text) for ln in _edges(page)})
    need = max(2, (len(pages) + 1) // 2)
    running = {k for k, n in counts.items() if n >= need} if len(pages) > 1 else set()
    out = []
    for page in pages:
        edges = {id(ln) for ln in _edges(page)}
        out.append(
            [
                ln
                for ln in page
                if id(ln) not in edges
                or (_key(ln.text) not in running and not _PAGE_NUMBER.match(fold(ln.text)))
            ]
        )
    return out


def _rejoin(pages: list[list[Line]]) -> list[Line]:
    """Lines a PDF's layout wrapped joined back: a line nearly as long as the longest runs on
    into the next one (across a page break too)."""
    widest = max((len(ln.text) for page in pages for ln in page), default=0)
    if widest < _MIN_WRAP_WIDTH:
        return [ln for page in pages for ln in page]
    full = widest * _FULL
    out: list[Line] = []
    pending = False  # the last line in ``out`` was wrapped and waits for its continuation
    for page in pages:
        trimmed = list(page)
        while trimmed and not trimmed[-1].text:
            trimmed.pop()
        for i, ln in enumerate(trimmed):
            if pending:
                if not ln.text:
                    continue  # the blank lines of a page break inside a paragraph
                last = out[-1]
                glue = "" if last.text.endswith("-") and last.text[-2:-1].isalpha() else " "
                out[-1] = Line(last.no, last.text + glue + ln.text)
            else:
                out.append(ln)
            pending = len(ln.text) >= full and bool(ln.text)
            if pending and i + 1 < len(trimmed) and not trimmed[i + 1].text:
                pending = False  # a paragraph that ends on a full line
        if not pending and trimmed:
            out.append(Line(trimmed[-1].no, ""))
    return out
