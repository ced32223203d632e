"""A supporter's letter as a PDF made for fax and for post.

One layout serves both: A4 or US Letter by the target's country, black text on white, 12 pt body
text (nothing under 11 pt), margins of at least 22 mm on every side so that a fax machine's header
line and a printer's unprintable edge touch nothing. Top to bottom: the sender (name and place),
the recipient's name, title and postal address as the campaign prints them, the date, the
subject, the salutation, the body with the supporter's own line breaks, the closing and the
signature. Multi-page documents carry "page i of n" in the footer. A fax can open with a cover
page (to, from, fax numbers, page count, campaign reference).

Rendering is pure: the same inputs give the same bytes (the creation date is the letter's date).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

import phonenumbers
from babel import Locale, UnknownLocaleError
from babel.dates import format_date as babel_date
from fpdf import FPDF
from fpdf.bidi import auto_detect_base_direction
from fpdf.enums import Align, MethodReturnValue, TextDirection, XPos, YPos
from fpdf.errors import FPDFException

from ua_dispatch.campaign import Campaign, Target
from ua_dispatch.documents import FaxCover, PdfDocument, UnprintableTextError
from ua_dispatch.documents.fonts import (
    Face,
    advances,
    coverage,
    face_advances,
    font_files,
    ignorable,
    printable_code_points,
)
from ua_dispatch.errors import ConfigError
from ua_dispatch.letter import RenderedLetter, Supporter

PageFormat = Literal["A4", "Letter"]

# Countries whose offices use US Letter (CLDR's paper-size data); everyone else uses A4.
LETTER_COUNTRIES = frozenset(
    {"US", "CA", "MX", "PH", "BZ", "CL", "CO", "CR", "GT", "NI", "PA", "PR", "SV", "VE"}
)

# --- layout, in millimetres and points ------------------------------------------------------
MARGIN_LEFT = 25.0
MARGIN_RIGHT = 25.0
MARGIN_TOP = 22.0
BODY_BOTTOM = 34.0  # body text stops this far above the bottom edge
FOOTER_TOP = 30.0  # the footer line starts this far above the bottom edge ...
FOOTER_HEIGHT = 6.0  # ... and ends 24 mm above it
BODY_PT = 12.0
FOOTER_PT = 11.0
COVER_TITLE_PT = 26.0
COVER_PT = 13.0
LINE = 6.0  # line pitch of 12 pt text
COVER_LINE = 6.6
PARAGRAPH_GAP = 3.0
COVER_LABEL_WIDTH = 38.0
FONT = "body"

_BLANK_LINES = re.compile(r"\n[ \t]*\n+")
#: zero-width joiner and non-joiner: kept for the shaper wherever a face has them
NON_JOINER = "\u200c"
JOINERS = frozenset((NON_JOINER, "\u200d"))


def page_format(country: str) -> PageFormat:
    """The paper size an office in ``country`` (ISO 3166 alpha-2) prints on."""
    return "Letter" if country.upper() in LETTER_COUNTRIES else "A4"


# --- words in the letter's language ---------------------------------------------------------


@dataclass(frozen=True)
class Labels:
    fax: str
    to: str
    to_fax: str
    sender: str
    sender_fax: str
    date: str
    pages: str
    pages_value: str  # "{n}"
    regarding: str
    forward_note: str  # "{name}"
    page_of: str  # "{i}", "{n}"


LABELS: dict[str, Labels] = {
    "en": Labels(
        fax="FAX",
        to="To",
        to_fax="Fax",
        sender="From",
        sender_fax="Sender's fax",
        date="Date",
        pages="Pages",
        pages_value="{n}, this page included",
        regarding="Regarding",
        forward_note="Please pass this letter to {name} without delay.",
        page_of="Page {i} of {n}",
    ),
    "de": Labels(
        fax="FAX",
        to="An",
        to_fax="Fax",
        sender="Von",
        sender_fax="Fax des Absenders",
        date="Datum",
        pages="Seiten",
        pages_value="{n}, diese eingeschlossen",
        regarding="Betreff",
        forward_note="Bitte geben Sie diesen Brief umgehend an {name} weiter.",
        page_of="Seite {i} von {n}",
    ),
    "es": Labels(
        fax="FAX",
        to="Para",
        to_fax="Fax",
        sender="De",
        sender_fax="Fax del remitente",
        date="Fecha",
        pages="Páginas",
        pages_value="{n}, incluida esta",
        regarding="Asunto",
        forward_note="Les ruego que entreguen esta carta a {name} sin demora.",
        page_of="Página {i} de {n}",
    ),
    "fr": Labels(
        fax="TÉLÉCOPIE",
        to="À",
        to_fax="Fax",
        sender="De",
        sender_fax="Fax de l'expéditeur",
        date="Date",
        pages="Pages",
        pages_value="{n}, celle-ci comprise",
        regarding="Objet",
        forward_note="Merci de remettre sans tarder cette lettre à {name}.",
        page_of="Page {i} sur {n}",
    ),
    "ru": Labels(
        fax="ФАКС",
        to="Кому",
        to_fax="Факс",
        sender="От",
        sender_fax="Факс отправителя",
        date="Дата",
        pages="Страниц",
        pages_value="{n}, включая эту",
        regarding="Тема",
        forward_note="Просьба незамедлительно передать это письмо адресату: {name}.",
        page_of="Страница {i} из {n}",
    ),
}


@functools.cache
def _locale(language: str) -> Locale | None:
    """CLDR's locale for a letter's language; English dates are written day first, as in
    the letters (``en_GB``). None for a language CLDR does not know."""
    tag = {"en": "en_GB"}.get(language, language.replace("-", "_"))
    try:
        return Locale.parse(tag)
    except (ValueError, TypeError, UnknownLocaleError):
        return None


def labels_for(language: str) -> Labels:
    return LABELS.get(language, LABELS["en"])


def format_date(date: dt.date, language: str) -> str:
    """The date as a letter in ``language`` writes it (CLDR's long form, from Babel); ISO
    8601 for a language CLDR does not know."""
    locale = _locale(language)
    if locale is None:
        return date.isoformat()
    # CLDR keeps "2019 г." together with a narrow no-break space, which the letter's font
    # lacks: a plain no-break space keeps them together in the font the letter is set in
    return babel_date(date, format="long", locale=locale).replace("\u202f", "\u00a0")


def display_number(number: str) -> str:
    """An E.164 number in international format (``+7 495 910-21-34``); others unchanged."""
    try:
        parsed = phonenumbers.parse(number, None)
    except phonenumbers.NumberParseException:
        return number
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.INTERNATIONAL)


def document_date(now: dt.datetime) -> dt.date:
    """The date to print on a letter built at ``now``: the calendar day where it is built."""
    return now.astimezone().date() if now.tzinfo is not None else now.date()


# --- characters the fonts can print ---------------------------------------------------------


@functools.cache
def _printable_chars() -> frozenset[str]:
    """The characters PT Sans prints, and the line break and space: a text made only of these
    needs no look at each character (the common case, checked at C speed)."""
    return frozenset(map(chr, printable_code_points())) | {"\n", " "}


def _without(text: str, drop: frozenset[str]) -> str:
    """Tabs to spaces, and without ``drop`` (invisible characters no font has: a zero-width
    space, a byte-order mark), which would otherwise be drawn as boxes."""
    text = text.replace("\t", "    ")
    if not drop or drop.isdisjoint(text):
        return text
    return "".join(c for c in text if c not in drop)


@dataclass(frozen=True)
class _Text:
    """Every string the document prints, cleaned, with where each came from, and the fallback
    faces that draw what PT Sans cannot."""

    sender: tuple[str, ...]
    recipient: tuple[str, ...]
    date: str
    subject: str
    salutation: str
    paragraphs: tuple[str, ...]
    closing: str
    signature: tuple[str, ...]
    faces: tuple[Face, ...] = ()
    #: keys of the faces whose bold file is loaded: those that draw some bold text
    bold: frozenset[str] = frozenset()
    #: invisible characters left out of every string (the cover's and footer's too)
    drop: frozenset[str] = frozenset()


def _cover_strings(cover: FaxCover | None) -> list[str]:
    if cover is None:
        return []
    return [
        s
        for s in (
            cover.to_name,
            cover.to_title,
            cover.from_name,
            cover.from_place,
            cover.reference,
            cover.subject,
        )
        if s
    ]


def _collect(
    rendered: RenderedLetter,
    target: Target,
    supporter: Supporter,
    campaign: Campaign,
    date: str,
    cover: FaxCover | None = None,
) -> _Text:
    recipient = [target.name, target.title]
    if target.organisation and target.organisation not in target.address:
        recipient.append(target.organisation)
    recipient.extend(target.address)
    text = _Text(
        sender=tuple(s for s in (supporter.name, supporter.place) if s),
        recipient=tuple(recipient),
        date=date,
        subject=campaign.subject_for(rendered.language),
        salutation=f"{rendered.salutation},",
        paragraphs=tuple(p.strip("\n") for p in _BLANK_LINES.split(rendered.body)),
        closing=rendered.closing,
        signature=tuple(rendered.signature),
    )
    checks: list[tuple[str, str | None, str]] = [
        ("letter", None, "\n".join((*text.paragraphs, text.closing))),
        ("supporter", "--name/--city/--country", "\n".join((*text.sender, *text.signature))),
        ("campaign", f"targets[{target.slug}]", "\n".join((*text.recipient, text.salutation))),
        ("campaign", "subject", text.subject),
        ("fax cover", None, "\n".join(_cover_strings(cover))),
    ]
    everything = "".join(value for _, _, value in checks) + text.date
    if _printable_chars().issuperset(everything.replace("\t", " ")):
        return _cleaned(text, (), frozenset())
    chars = set(everything) - {"\t"}
    # Invisible characters PT Sans lacks are left out, as they always were, but for the
    # joiners that shaping needs (Persian's zero-width non-joiner, emoji sequences), which a
    # fallback face draws
    base = printable_code_points()
    invisible = {c for c in chars if ignorable(c) and c not in JOINERS and ord(c) not in base}
    found = coverage(chars - invisible, rendered.language)
    drop = frozenset(invisible.union(c for c in found.missing if ignorable(c)))
    unprintable = set(found.missing) - drop
    if unprintable:
        for source, field, value in checks:
            here = [c for c in dict.fromkeys(value) if c in unprintable]
            if here:
                raise UnprintableTextError(here, source=source, field=field)
    # bold text: the sender's and the signature's name, the subject (cover labels are ours)
    bold = set(supporter.name + text.subject) - invisible - drop
    bold_faces = frozenset(face.key for face in coverage(bold, rendered.language).faces)
    return _cleaned(text, found.faces, drop, bold_faces)


def _cleaned(
    text: _Text,
    faces: tuple[Face, ...],
    drop: frozenset[str],
    bold: frozenset[str] = frozenset(),
) -> _Text:
    def clean(value: str) -> str:
        return _without(value, drop)

    return _Text(
        sender=tuple(map(clean, text.sender)),
        recipient=tuple(map(clean, text.recipient)),
        date=text.date,
        subject=clean(text.subject),
        salutation=clean(text.salutation),
        paragraphs=tuple(map(clean, text.paragraphs)),
        closing=clean(text.closing),
        signature=tuple(map(clean, text.signature)),
        faces=faces,
        bold=bold,
        drop=drop,
    )


def check_printable(
    rendered: RenderedLetter,
    target: Target,
    supporter: Supporter,
    campaign: Campaign,
    *,
    date: dt.date,
    cover: FaxCover | None = None,
    source: str = "letter",
) -> None:
    """Raise what :func:`render_letter_pdf` raises about the text (characters no font can
    print, naming where they came from) without laying out or drawing anything."""
    with _letter_named(source):
        _collect(rendered, target, supporter, campaign, format_date(date, rendered.language), cover)


_PAGE_MM = {"A4": (210.0, 297.0), "Letter": (215.9, 279.4)}


def pages_at_most(
    rendered: RenderedLetter,
    target: Target,
    supporter: Supporter,
    campaign: Campaign,
    *,
    cover: bool,
) -> int:
    """At least as many pages as :func:`render_letter_pdf` makes, found without laying out.

    Every character is taken as wide as the widest in its paragraph; of two lines it wraps
    into, together they hold at least a line's width (a word goes to the next line only when it
    does not fit); each page loses up to two lines to the rules that keep a paragraph's lines
    together, and the closing block may start a page of its own. For a letter of a page or two
    this is a few pages, far under any fax limit; only a long letter needs the real layout.
    """
    width_mm, height_mm = _PAGE_MM[page_format(target.country)]
    width_mm -= MARGIN_LEFT + MARGIN_RIGHT
    paragraphs = _BLANK_LINES.split(rendered.body)
    # what _collect gathers, before cleaning (which only drops characters, and widens a tab to
    # four spaces: counted below)
    strings = [
        *(s for s in (supporter.name, supporter.place) if s),
        target.name,
        target.title,
        target.organisation or "",
        *target.address,
        "00 September 0000",  # the date
        campaign.subject_for(rendered.language),
        f"{rendered.salutation},",
        *paragraphs,
        rendered.closing,
        *rendered.signature,
    ]
    widths = advances()
    others = {c for s in strings for c in s if ord(c) not in widths}
    if others:
        # characters a fallback face draws: as wide as the widest face that has them
        widths = dict(widths)
        for face in coverage(others, rendered.language).faces:
            for cp, width in face_advances(face).items():
                if chr(cp) in others:
                    widths[cp] = max(width, widths.get(cp, 0.0))
    em_mm = BODY_PT * 25.4 / 72

    def lines(value: str) -> int:
        widest = max((widths.get(ord(c), 1.0) for c in set(value)), default=1.0) * em_mm
        per_line = max(1, int((width_mm - widest) / widest))
        return sum(
            1 if n <= per_line else 2 * -(-n // per_line) + 1
            for n in (len(part) + 3 * part.count("\t") for part in value.split("\n"))
        )

    total = sum(lines(s) for s in strings)
    total += 6 + len(paragraphs)  # the gaps between blocks and paragraphs, in lines
    per_page = int((height_mm - MARGIN_TOP - BODY_BOTTOM) // LINE) - 2
    return -(-total // per_page) + 1 + (1 if cover else 0)


@contextlib.contextmanager
def _letter_named(source: str) -> Iterator[None]:
    """Text problems found in the letter name the letter's own source (its file, its row)."""
    try:
        yield
    except UnprintableTextError as exc:
        if exc.source != "letter" or source == "letter":
            raise
        raise UnprintableTextError(exc.chars, source=source) from None


# --- drawing --------------------------------------------------------------------------------


class _Pdf(FPDF):
    def __init__(
        self,
        fmt: PageFormat,
        footer: Callable[[int], str] | None,
        drop: frozenset[str] = frozenset(),
    ):
        super().__init__(orientation="portrait", unit="mm", format=fmt)
        self._footer_text = footer
        self._drop = drop
        # Never substitute "{nb}" inside a supporter's text: page totals are computed instead.
        self.alias_nb_pages("")

    def clean(self, text: str) -> str:
        """``text`` as the document prints it (see :func:`_without`)."""
        return _without(text, self._drop)

    def direct(self, text: str) -> tuple[TextDirection, str]:
        """Set the direction of the paragraph ``text`` by its first strong character (right to
        left for Arabic or Hebrew) when text is shaped; return it and the text to draw.

        fpdf2's bidi gives a zero-width non-joiner the paragraph's level, not its neighbours',
        which in a left-to-right paragraph splits a right-to-left run around it and swaps the
        halves: there the non-joiner is left out (the letters join, the words stay in order).
        """
        direction = auto_detect_base_direction(text)
        if self.text_shaping:
            self.set_text_shaping(True, direction=direction)
            if direction is TextDirection.LTR and NON_JOINER in text:
                text = text.replace(NON_JOINER, "")
        return direction, text

    def use_faces(self, faces: Sequence[Face], bold: frozenset[str]) -> None:
        """Draw what PT Sans lacks from ``faces``, shaped by HarfBuzz (joined Arabic letters,
        Indic clusters, right-to-left runs)."""
        if not faces:
            return
        for face in faces:
            self.add_font(face.key, "", face.path, collection_font_number=face.index)
            if face.bold is not None and face.key in bold:  # a CJK face takes a while
                self.add_font(face.key, "B", face.bold, collection_font_number=face.index)
        # a face without bold draws bold text at its regular weight rather than not at all
        self.set_fallback_fonts([face.key for face in faces], exact_match=False)
        try:
            self.set_text_shaping(True)
        except FPDFException as exc:  # uharfbuzz missing
            raise ConfigError(f"{exc}; reinstall ua-dispatch, which depends on it") from None

    def footer(self) -> None:
        if self._footer_text is None:
            return
        # a page may end inside a paragraph: its direction holds on the next page
        shaping = dict(self.text_shaping) if self.text_shaping else None
        self.set_y(-FOOTER_TOP)
        self.set_font(FONT, "", FOOTER_PT)
        self.cell(0, FOOTER_HEIGHT, self._footer_text(self.page_no()), align=Align.C)
        if shaping is not None:
            self.text_shaping = shaping

    def fits_line(self, text: str, pt: float) -> bool:
        self.set_font(FONT, "", pt)
        return self.get_string_width(text) <= self.epw

    def block(
        self,
        text: str,
        *,
        bold: bool = False,
        align: Align = Align.L,
        pt: float = BODY_PT,
        line: float = LINE,
        width: float = 0,
    ) -> None:
        self.set_font(FONT, "B" if bold else "", pt)
        direction, text = self.direct(text)
        if direction is TextDirection.RTL and align is Align.L:
            align = Align.R  # a right-to-left paragraph starts at the right margin
        self.multi_cell(width, line, text, align=align, new_x=XPos.LMARGIN, new_y=YPos.NEXT)


def _cover_page(
    pdf: _Pdf, cover: FaxCover, labels: Labels, language: str, total: int | None
) -> None:
    pdf.add_page()
    pdf.block(labels.fax, bold=True, pt=COVER_TITLE_PT, line=12.0)
    pdf.ln(2.0)
    _rule(pdf)
    pdf.ln(5.0)
    rows: list[tuple[str, str]] = [
        (labels.to, "\n".join(s for s in (cover.to_name, cover.to_title) if s)),
        (labels.to_fax, display_number(cover.to_fax)),
        (labels.sender, ", ".join(s for s in (cover.from_name, cover.from_place) if s)),
    ]
    if cover.from_fax:
        rows.append((labels.sender_fax, display_number(cover.from_fax)))
    pages = cover.pages if cover.pages is not None else total
    rows.append((labels.date, format_date(cover.date, language)))
    rows.append((labels.pages, labels.pages_value.format(n=pages if pages is not None else 0)))
    rows.append((labels.regarding, "\n".join(s for s in (cover.reference, cover.subject) if s)))
    for label, value in rows:
        pdf.set_font(FONT, "B", COVER_PT)
        pdf.cell(COVER_LABEL_WIDTH, COVER_LINE, label)
        pdf.set_font(FONT, "", COVER_PT)
        _, value = pdf.direct(pdf.clean(value))
        pdf.multi_cell(0, COVER_LINE, value, align=Align.L, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        pdf.ln(2.5)
    pdf.ln(3.0)
    _rule(pdf)
    pdf.ln(6.0)
    note = pdf.clean(labels.forward_note.format(name=cover.to_name))
    pdf.block(note, pt=COVER_PT, line=COVER_LINE)


def _rule(pdf: _Pdf) -> None:
    pdf.set_draw_color(0)
    pdf.set_line_width(0.5)
    y = pdf.get_y()
    pdf.line(pdf.l_margin, y, pdf.w - pdf.r_margin, y)


def _lines(pdf: _Pdf, paragraph: str) -> list[str]:
    pdf.set_font(FONT, "", BODY_PT)
    lines = pdf.multi_cell(
        0, LINE, paragraph, align=Align.L, dry_run=True, output=MethodReturnValue.LINES
    )
    if not isinstance(lines, list):
        raise TypeError("fpdf2 returned no lines for a dry run")
    return [str(line) for line in lines]


def _room(pdf: _Pdf) -> int:
    """Whole body lines that still fit on the current page."""
    return int((pdf.page_break_trigger - pdf.get_y()) // LINE)


def _at_top(pdf: _Pdf) -> bool:
    return pdf.get_y() <= pdf.t_margin + 0.01


def _body(pdf: _Pdf, paragraphs: Sequence[str], tail: float) -> None:
    """Body paragraphs line by line. A paragraph never leaves one line alone at the foot of a
    page or at the head of the next, and the last paragraph's final two lines go with the
    closing block (``tail`` millimetres high), so the signature never stands on a page alone."""
    for p_index, paragraph in enumerate(paragraphs):
        direction, paragraph = pdf.direct(paragraph)
        align = Align.R if direction is TextDirection.RTL else Align.L
        lines = _lines(pdf, paragraph)
        last = p_index == len(paragraphs) - 1
        if len(lines) > 1 and _room(pdf) < 2:
            pdf.add_page()
        for i, line in enumerate(lines):
            rest = len(lines) - i
            keep_with_closing = last and rest <= 2 and pdf.will_page_break(rest * LINE + tail)
            widow = rest == 2 and i >= 2 and _room(pdf) == 1
            if (keep_with_closing or widow) and not _at_top(pdf):
                pdf.add_page()
            pdf.set_font(FONT, "", BODY_PT)
            pdf.cell(0, LINE, line, align=align, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        pdf.ln(PARAGRAPH_GAP)


def _letter_pages(pdf: _Pdf, text: _Text) -> None:
    pdf.add_page()
    for i, line in enumerate(text.sender):
        pdf.block(line, bold=i == 0, align=Align.R)
    pdf.ln(LINE * 1.5)
    for line in text.recipient:
        pdf.block(line)
    pdf.ln(LINE)
    pdf.block(text.date, align=Align.R)
    pdf.ln(LINE)
    pdf.block(text.subject, bold=True)
    pdf.ln(LINE * 0.75)
    pdf.block(text.salutation)
    pdf.ln(PARAGRAPH_GAP)
    closing_gap = LINE - PARAGRAPH_GAP
    tail = PARAGRAPH_GAP + closing_gap + LINE * (2 + len(text.signature))
    _body(pdf, text.paragraphs, tail)
    if pdf.will_page_break(tail - PARAGRAPH_GAP):  # a one-line last paragraph at a page foot
        pdf.add_page()
    pdf.ln(closing_gap)
    pdf.block(text.closing)
    pdf.ln(LINE)
    for i, line in enumerate(text.signature):
        pdf.block(line, bold=i == 0)


def _draw(
    text: _Text,
    rendered: RenderedLetter,
    target: Target,
    supporter: Supporter,
    campaign: Campaign,
    date: dt.date,
    cover: FaxCover | None,
    total: int | None,
) -> _Pdf:
    """Lay the pages out; ``total`` (when known) goes into the footer and onto the cover."""
    labels = labels_for(rendered.language)
    footer: Callable[[int], str] | None = None
    if total is not None and total > 1:
        n = total

        def footer(i: int) -> str:
            page = labels.page_of.format(i=i, n=n)
            _, full = pdf.direct(pdf.clean(f"{campaign.ua_number} · {target.name} · {page}"))
            return full if pdf.fits_line(full, FOOTER_PT) else page

    pdf = _Pdf(page_format(target.country), footer, text.drop)
    pdf.set_creation_date(dt.datetime.combine(date, dt.time(), dt.UTC))
    pdf.set_title(text.subject)
    pdf.set_subject(f"{campaign.ua_number} ({campaign.reference})")
    pdf.set_author(supporter.name)
    pdf.set_creator("ua-dispatch")
    pdf.set_lang(rendered.language)
    fonts = font_files()
    pdf.add_font(FONT, "", str(fonts.regular))
    pdf.add_font(FONT, "B", str(fonts.bold))
    pdf.set_font(FONT, "", BODY_PT)
    pdf.use_faces(text.faces, text.bold)
    pdf.set_margins(MARGIN_LEFT, MARGIN_TOP, MARGIN_RIGHT)
    pdf.set_auto_page_break(True, BODY_BOTTOM)
    pdf.set_text_color(0)
    if cover is not None:
        _cover_page(pdf, cover, labels, rendered.language, total)
    _letter_pages(pdf, text)
    return pdf


def render_letter_pdf(
    rendered: RenderedLetter,
    target: Target,
    supporter: Supporter,
    campaign: Campaign,
    *,
    date: dt.date,
    cover: FaxCover | None = None,
    source: str = "letter",
) -> PdfDocument:
    """Render one official's letter (and an optional fax cover page) to PDF.

    Raises :class:`UnprintableTextError` (an InputError) when some text has characters no font
    can print, naming where they came from (the letter's ``source``, the campaign or the
    supporter).
    """
    with _letter_named(source):
        language = rendered.language
        text = _collect(rendered, target, supporter, campaign, format_date(date, language), cover)
    # Lay out once to count the pages, then again with the total in the footer and on the
    # cover. Neither changes where lines break, so the count holds.
    args = (text, rendered, target, supporter, campaign, date, cover)
    pdf = _draw(*args, None)
    if pdf.pages_count > 1 or cover is not None:
        total = pdf.pages_count
        pdf = _draw(*args, total)
        if pdf.pages_count != total:
            raise AssertionError(f"page count changed from {total} to {pdf.pages_count}")
    data = bytes(pdf.output())
    return PdfDocument(data=data, pages=pdf.pages_count)
