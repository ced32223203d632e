"""Finding a campaign's facts in the cleaned lines of an Urgent Action document.

Both layouts in use are understood: the current one (each official's block of name, title,
address and labelled lines, then the sample letter) and the older one ("PLEASE SEND APPEALS
... TO:" followed by the blocks, and "And copies to:" for officials who get a copy). Whatever
had to be guessed or could not be found is noted with the line it concerns.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Literal

import phonenumbers
from pydantic import TypeAdapter, ValidationError

from ua_dispatch.campaign import Email, parse_number
from ua_dispatch.headertext import ENCODED_WORD_OPENER
from ua_dispatch.importer.clean import Line
from ua_dispatch.importer.labels import Table, Words, contains, fold, starts_with, words
from ua_dispatch.importer.names import alpha3, country_code, country_name, language_code

#: how long after issue an action runs when the document gives no date (a guess to check)
DEFAULT_RUN = dt.timedelta(days=42)

_REFERENCE = re.compile(r"\b([A-Z]{3}) ?(\d{2}) ?/ ?(\d{3,5}) ?/ ?(\d{4})\b")
_NUMBER = re.compile(r"\+?\(?\d[\d\s().\-/]{4,}\d")
_EMAIL = re.compile(r"[^\s,;:<>()\"'\[\]]+@[^\s,;:<>()\"'\[\]]+\.[A-Za-z]{2,}")
_X_TOKEN = re.compile(r"@?([A-Za-z0-9_]{1,15})(?![\w@.])")
_MASTODON = re.compile(r"@?[A-Za-z0-9_.-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
_BLUESKY = re.compile(r"@?((?:[A-Za-z0-9-]+\.)+[A-Za-z]{2,})")
_TRAILING_SEPARATOR = re.compile(r"(?:\s+(?:[|/;,•·\-–—]|I|l)|[|;,•·])\s*$")
_LIST_ITEM = re.compile(r"^\s*(?:\d{1,2}[.)]|[-•*])\s")
_CONNECTOR = re.compile(
    r"\s+(?:of|to|for|at|in|on|de|del|du|des|en|a|aux|au|pour)\s+|\s+d'|,", re.IGNORECASE
)
_NAME_WORD = re.compile(r"^[^\W\d_][^\W\d_'.-]*(?:[-'][^\W\d_]+)*\.?$")
_DATE_NUMERIC = re.compile(r"\b(\d{4})-(\d{2})-(\d{2})\b|\b(\d{1,2})[./](\d{1,2})[./](\d{4})\b")
# words left out of slugs
SLUG_STOPWORDS = frozenset(
    ("of", "the", "to", "for", "and", "in", "on", "a", "de", "la", "el", "del", "los", "las",
     "y", "en", "du", "des", "le", "les", "et", "d", "l", "au", "aux")
)  # fmt: skip
_EMAIL_ADAPTER: TypeAdapter[str] = TypeAdapter(Email)


Status = Literal["guessed", "missing"]


@dataclass(frozen=True)
class Note:
    """A field the importer guessed or could not find, for the organizer to check."""

    field: str
    status: Status
    line: int | None
    detail: str


@dataclass
class Official:
    """One official as found in the document."""

    line: int
    name: str
    title: str | None = None
    organisation: str | None = None
    country: str | None = None
    address: list[str] = field(default_factory=list)
    salutation: str | None = None
    email: str | None = None
    fax: str | None = None
    phone: str | None = None
    x_handles: list[str] = field(default_factory=list)
    mastodon: list[str] = field(default_factory=list)
    bluesky: list[str] = field(default_factory=list)
    copy: bool = False
    slug: str = ""
    role: str | None = None
    found: list[str] = field(default_factory=list)
    #: notes on this official's fields (the field without the ``targets[i]`` part)
    notes: list[Note] = field(default_factory=list)
    # raw numbers (kind, text, line) read before the country is known
    numbers: list[tuple[str, str, int]] = field(default_factory=list)


@dataclass
class Parsed:
    """What the document gave: the campaign's fields, its officials, the sample letter and
    additional information, and a note per guessed or missing field."""

    language: str
    data: dict[str, Any]
    officials: list[Official]
    sample_letter: str | None
    background: str | None
    notes: list[Note]


# ---------------------------------------------------------------------------------------------
# small helpers


def slugify(text: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")


def _parse_date(text: str, months: dict[str, int]) -> dt.date | None:
    """The first date in ``text``: "17 May 2019", "3 APRIL 2023", "1er août 2023",
    "5 de mayo de 2022", "May 17, 2019", "2019-05-17" or "17/05/2019"."""
    folded = fold(text)
    names = "|".join(sorted((re.escape(m) for m in months), key=len, reverse=True))
    day_first = re.search(
        rf"\b(\d{{1,2}})(?:er|st|nd|rd|th|º|°)?\.?\s+(?:de\s+)?({names})\.?,?\s+(?:de\s+)?(\d{{4}})\b",
        folded,
    )
    month_first = re.search(
        rf"\b({names})\.?\s+(\d{{1,2}})(?:st|nd|rd|th)?,?\s+(\d{{4}})\b", folded
    )
    numeric = _DATE_NUMERIC.search(folded)
    found: list[tuple[int, dt.date]] = []
    for m, order in ((day_first, "dmy"), (month_first, "mdy")):
        if m is None:
            continue
        if order == "dmy":
            day, month, year = int(m.group(1)), months[m.group(2)], int(m.group(3))
        else:
            day, month, year = int(m.group(2)), months[m.group(1)], int(m.group(3))
        try:
            found.append((m.start(), dt.date(year, month, day)))
        except ValueError:
            continue
    if numeric is not None:
        try:
            if numeric.group(1):
                date = dt.date(int(numeric.group(1)), int(numeric.group(2)), int(numeric.group(3)))
            else:
                date = dt.date(int(numeric.group(6)), int(numeric.group(5)), int(numeric.group(4)))
            found.append((numeric.start(), date))
        except ValueError:
            pass
    return min(found)[1] if found else None


def _sentence_case(headline: str, lines: list[Line]) -> str:
    """An all-capitals headline in sentence case, each word written as the document's prose
    writes it mid-sentence ("CHECHNYA" → "Chechnya", "LGBTI" stays)."""
    if any(ch.islower() for ch in headline):
        return headline
    forms: dict[str, Counter[str]] = {}
    for ln in lines:
        if not any(ch.islower() for ch in ln.text):
            continue
        for sentence in re.split(r"(?<=[.!?])\s+", ln.text):
            for word in re.findall(r"[^\W_][\w'-]*", sentence)[1:]:
                forms.setdefault(fold(word), Counter())[word] += 1
    out = []
    for i, word in enumerate(headline.split()):
        core = re.sub(r"^\W+|\W+$", "", word)
        seen = forms.get(fold(core))
        form = seen.most_common(1)[0][0] if seen else core.lower()
        if i == 0:
            form = form[:1].upper() + form[1:]
        out.append(word.replace(core, form, 1) if core else word)
    return " ".join(out)


# ---------------------------------------------------------------------------------------------
# the document


class _Reader:
    def __init__(self, lines: list[Line]) -> None:
        self.lines = lines
        self.w: Words = words()
        self.table: Table = self._language()
        self.months = self.w.months
        self.notes: list[Note] = []

    def note(self, field_: str, status: Status, line: int | None, detail: str) -> None:
        self.notes.append(Note(field_, status, line, detail))

    @staticmethod
    def onote(off: Official, field_: str, status: Status, line: int | None, detail: str) -> None:
        off.notes.append(Note(field_, status, line, detail))

    def _language(self) -> Table:
        scores: Counter[str] = Counter()
        for t in self.w.tables:
            phrases = [*t.headings, *t.openers, *t.closings]
            for values in t.sections.values():
                phrases.extend(values)
            for values in t.contact.values():
                phrases.extend(v for v in values if len(v) > 3)
            for ln in self.lines:
                if ln.text and starts_with(ln.text, phrases) is not None:
                    scores[t.language] += 1
        best = max(self.w.tables, key=lambda t: scores[t.language])
        return best

    def first(self, phrases: list[str], start: int = 0) -> int | None:
        for i in range(start, len(self.lines)):
            if self.lines[i].text and starts_with(self.lines[i].text, phrases) is not None:
                return i
        return None

    # -- the action's facts ---------------------------------------------------------------------

    def ua_number(self) -> tuple[str | None, int | None]:
        alternation = "|".join(
            re.escape(fold(w)) for w in sorted(set(self.w.every("ua_words")), key=len, reverse=True)
        )
        pattern = re.compile(
            rf"(?<!\w)({alternation})\s*(?:n[o°º]\.?|num\.?)?\s*:?\s*(\d{{1,4}})\s*[/.]\s*(\d{{2}}|\d{{4}})(?![\d/])"
        )
        for ln in self.lines:
            for m in pattern.finditer(fold(ln.text)):
                word = ln.text[m.start(1) : m.end(1)]
                if len(word) <= 2 and not word.isupper():
                    continue  # "au" is also a French word; the abbreviation is in capitals
                word = word.upper()
                prefix = word if word in ("UA", "AU") else self.table.ua_prefix
                return f"{prefix} {int(m.group(2))}/{m.group(3)[-2:]}", ln.no
        return None, None

    def reference(self) -> tuple[str | None, int | None, int | None]:
        for i, ln in enumerate(self.lines):
            m = _REFERENCE.search(ln.text)
            if m:
                return f"{m.group(1)} {m.group(2)}/{m.group(3)}/{m.group(4)}", ln.no, i
        return None, None, None

    def issued(self, ref_index: int | None) -> tuple[dt.date | None, int | None]:
        labels = "|".join(re.escape(fold(x)) for x in self.w.every_section("issued"))
        pattern = re.compile(rf"(?<!\w)(?:{labels})\s*:")
        for ln in self.lines:
            m = pattern.search(fold(ln.text))
            if m:
                date = _parse_date(ln.text[m.end() :], self.months)
                if date is not None:
                    return date, ln.no
        if ref_index is not None:
            date = _parse_date(self.lines[ref_index].text, self.months)
            if date is not None:
                return date, self.lines[ref_index].no
        return None, None

    def country(self, ref_index: int | None) -> tuple[str | None, int | None]:
        if ref_index is None:
            return None, None
        ln = self.lines[ref_index]
        m = _REFERENCE.search(ln.text)
        assert m is not None
        rest = ln.text[m.end() :]
        labels = "|".join(re.escape(fold(x)) for x in self.w.every_section("issued"))
        cut = re.search(rf"(?<!\w)(?:{labels})\s*:", fold(rest))
        if cut:
            rest = rest[: cut.start()]
        rest = rest.strip(" ,;:-–—|\t")
        return (rest, ln.no) if rest and not rest.isdigit() else (None, None)

    def act_until(self) -> tuple[dt.date | None, int | None]:
        phrases = self.w.every_section("act_until")
        i = self.first(phrases)
        while i is not None:
            ln = self.lines[i]
            end = starts_with(ln.text, phrases)
            assert end is not None
            date = _parse_date(ln.text[end:], self.months)
            if date is None and i + 1 < len(self.lines):
                date = _parse_date(self.lines[i + 1].text, self.months)
            if date is not None:
                return date, ln.no
            i = self.first(phrases, i + 1)
        return None, None

    def languages(self) -> tuple[list[str], int | None]:
        own = self.w.every_section("own_language")
        i = self.first(self.w.every_section("languages"))
        if i is not None:
            ln = self.lines[i]
            text = ln.text.split(":", 1)[1] if ":" in ln.text else ln.text
            codes = self._language_names(text, own)
            if not codes and i + 1 < len(self.lines):
                codes = self._language_names(self.lines[i + 1].text, own)
            if codes:
                return codes, ln.no
        for ln in self.lines:
            if contains(ln.text, own):
                codes = self._language_names(ln.text, own)
                if codes:
                    return codes, ln.no
        return [], None

    @staticmethod
    def _language_names(text: str, own: list[str]) -> list[str]:
        codes: list[str] = []
        parts = re.split(r"[,;/]|\s+(?:and|or|y|o|u|e|et|ou)\s+", text.strip().rstrip("."))
        for part in parts:
            if not part.strip() or contains(part, own):
                continue
            tokens = part.split()
            for n in (len(tokens), 2, 1):
                code = language_code(" ".join(tokens[-n:])) if n <= len(tokens) else None
                if code:
                    if code not in codes:
                        codes.append(code)
                    break
        return codes

    def headline(self) -> tuple[str | None, int | None]:
        skip = [*self.w.every("headings")]
        for ln in self.lines:
            text = ln.text
            if not text or starts_with(text, skip) is not None:
                continue
            if _REFERENCE.search(text) or re.match(r"^\W*(?:UA|AU)\b", text):
                continue
            return text, ln.no
        return None, None

    # -- sections -------------------------------------------------------------------------------

    def sample_letter(self) -> tuple[int | None, int | None]:
        """Index of the sample letter's salutation and of its closing line."""
        openers = self.w.every("openers")
        closings = self.w.every("closings")
        for i, ln in enumerate(self.lines):
            text = ln.text
            if not text or len(text) > 80 or starts_with(text, openers) is None:
                continue
            if not text.rstrip().endswith((",", ":")):
                continue
            following = next((x for x in self.lines[i + 1 :] if x.text), None)
            if following is None or len(following.text) < 60:
                continue
            close = self.first(closings, i + 1)
            return i, close
        return None, None

    def stop_phrases(self) -> list[str]:
        keys = ("additional", "languages", "act_until", "after_deadline", "take_action")
        return [p for k in keys for p in self.w.every_section(k)] + self.w.every("headings")

    def background(self) -> tuple[str | None, int | None]:
        i = self.first(self.w.every_section("additional"))
        if i is None or len(self.lines[i].text) > 80:
            return None, None
        stops = [p for p in self.stop_phrases() if p not in self.w.every_section("additional")]
        paragraphs: list[list[str]] = [[]]
        for ln in self.lines[i + 1 :]:
            if ln.text and (starts_with(ln.text, stops) is not None or _REFERENCE.search(ln.text)):
                break
            if ln.text:
                paragraphs[-1].append(ln.text)
            elif paragraphs[-1]:
                paragraphs.append([])
        text = "\n\n".join(" ".join(p) for p in paragraphs if p)
        return (text or None), self.lines[i].no

    # -- officials ------------------------------------------------------------------------------

    def blocks(self, start: int, end: int) -> list[list[Line]]:
        out: list[list[Line]] = [[]]
        for ln in self.lines[start:end]:
            if ln.text:
                out[-1].append(ln)
            elif out[-1]:
                out.append([])
        return [b for b in out if b]

    def is_contact(self, text: str) -> bool:
        m = self.w.contact_re.search(fold(text))
        return m is not None and m.start() == 0

    def looks_official(self, block: list[Line]) -> bool:
        texts = [ln.text for ln in block]
        if len(texts) < 2 or _LIST_ITEM.match(texts[0]):
            return False
        if starts_with(texts[0], self.stop_phrases()) is not None:
            return False
        if _REFERENCE.search(texts[0]):
            return False
        for t in texts:
            if len(t) > 90 or (t.endswith(".") and len(t.split()) > 6):
                return False
        return any(self.is_contact(t) for t in texts) or len(texts) >= 3

    def officials(self, sample_at: int | None) -> list[Official]:
        appeals = self.w.every_section("appeals_to")
        copies = self.w.every_section("copies_to")
        stops = self.stop_phrases()
        start = None
        for i, ln in enumerate(self.lines):
            if (
                ln.text
                and starts_with(ln.text, appeals) is not None
                and ln.text.rstrip(" .").endswith(":")
            ):
                start = i + 1
                break
        if start is not None:  # the older layout: everything after the line, to the next section
            end = len(self.lines)
            for j in range(start, len(self.lines)):
                text = self.lines[j].text
                if (
                    text
                    and starts_with(text, stops) is not None
                    and starts_with(text, copies) is None
                ):
                    end = j
                    break
            if sample_at is not None and start <= sample_at < end:
                end = sample_at
            candidates = self.blocks(start, end)
            strict = False
        else:
            candidates = self.blocks(0, sample_at if sample_at is not None else len(self.lines))
            strict = True
        found: list[Official] = []
        blocks: list[list[Line]] = []
        copy = False
        for block in candidates:
            if starts_with(block[0].text, copies) is not None:
                copy = True
                block = block[1:]
            if not block:
                continue
            if found and found[-1].copy == copy and all(self.is_contact(ln.text) for ln in block):
                # the rest of the previous official's lines, after a blank line
                blocks[-1] = blocks[-1] + block
                found[-1] = self.official(blocks[-1], copy=copy)
                continue
            if strict and not self.looks_official(block):
                continue
            if not strict and len(block) < 2:
                continue
            if all(self.is_contact(ln.text) for ln in block):
                continue  # labelled lines without anyone's name
            blocks.append(block)
            found.append(self.official(block, copy=copy))
        if strict:
            # outside a "write to" section, a block of short lines that gives no way to reach
            # anyone (no salutation, email, number or handle) is not an official; judged once
            # each block has its contact lines, some of which may follow a blank line
            found = [o for o in found if _reachable(o)]
        return found

    def _role(self, text: str) -> tuple[str | None, str]:
        """The role a line starts with (after an honorific) and the rest of the line."""
        rest = text
        h = starts_with(rest, self.w.every("honorifics"))
        if h is not None:
            rest = rest[h:].strip()
        r = starts_with(rest, self.w.every("roles"))
        if r is None:
            return None, text
        return rest[:r].strip(), rest[r:].strip()

    def _is_title_only(self, text: str) -> bool:
        role, rest = self._role(text)
        if role is None:
            return False
        return not rest or bool(
            re.match(r"^(?:,|of|to|for|de|del|du|des|d'|en|a|au|aux)\b", fold(rest))
        )

    def _nameish(self, text: str) -> bool:
        tokens = text.split()
        if not 1 <= len(tokens) <= 7 or any(ch.isdigit() for ch in text):
            return False
        if starts_with(text, self.w.every("organisations")) is not None:
            return False
        return all(_NAME_WORD.match(t) for t in tokens) and tokens[-1][:1].isupper()

    def official(self, block: list[Line], *, copy: bool) -> Official:
        plain: list[Line] = []
        contacts: list[tuple[str, str, int]] = []
        for ln in block:
            folded = fold(ln.text)
            matches = list(self.w.contact_re.finditer(folded))
            if not matches:
                plain.append(ln)
                continue
            before = ln.text[: matches[0].start()].strip(" ,;|")
            if before:
                plain.append(Line(ln.no, before))
            for k, m in enumerate(matches):
                stop = matches[k + 1].start() if k + 1 < len(matches) else len(ln.text)
                value = ln.text[m.end() : stop].strip()
                while True:
                    trimmed = _TRAILING_SEPARATOR.sub("", value).strip()
                    if trimmed == value:
                        break
                    value = trimmed
                kind = self.w.contact_kind[m.group(1)]
                contacts.append((kind, value, ln.no))
        if not plain:
            plain = [Line(block[0].no, "")]
        off = Official(line=plain[0].no, name=plain[0].text, copy=copy)
        rest = plain[1:]
        if len(plain) > 1 and self._is_title_only(plain[0].text) and self._nameish(plain[1].text):
            off.title = plain[0].text
            off.name = plain[1].text
            off.line = plain[1].no
            rest = plain[2:]
        elif rest and starts_with(rest[0].text, self.w.every("organisations")) is None:
            candidate = rest[0].text
            is_title = self._role(candidate)[0] is not None or (
                contains(candidate, self.w.every("roles"))
                and not any(c.isdigit() for c in candidate)
            )
            if is_title:
                off.title = candidate
                rest = rest[1:]
        off.role = self._role(off.name)[0] or (self._role(off.title)[0] if off.title else None)
        if rest and starts_with(rest[0].text, self.w.every("organisations")) is not None:
            off.organisation = rest[0].text
        off.address = _split_address([ln.text for ln in rest])
        for kind, value, no in contacts:
            self._contact(off, kind, value, no)
        return off

    def _contact(self, off: Official, kind: str, value: str, no: int) -> None:
        label = {"x": "x_handles"}.get(kind, kind)
        if kind == "salutation":
            value = value.rstrip(" ,:;")
            if value:
                off.salutation = value
                off.found.append("salutation")
            return
        if kind in ("fax", "phone"):
            numbers = _NUMBER.findall(value)
            if numbers:
                off.numbers.append((kind, numbers[0].strip(), no))
                if len(numbers) > 1:
                    self.onote(
                        off, kind, "guessed", no, f"kept the first of {len(numbers)} numbers"
                    )
            else:
                self.onote(off, kind, "missing", no, f"{value!r} is not a number")
            return
        if kind == "email":
            addresses = _EMAIL.findall(value)
            for address in addresses:
                try:
                    checked = _EMAIL_ADAPTER.validate_python(address.rstrip("."))
                except ValidationError:
                    self.onote(off, "email", "missing", no, f"{address!r} is not a usable address")
                    continue
                if off.email is None:
                    off.email = checked
                    off.found.append("email")
                    if len(addresses) > 1:
                        self.onote(
                            off,
                            "email",
                            "guessed",
                            no,
                            f"kept the first of {len(addresses)} addresses",
                        )
                break
            if not addresses:
                self.onote(off, "email", "missing", no, f"{value!r} is not an email address")
            return
        if kind == "x":
            tokens = [t for t in re.split(r"[\s,;/]+|\s(?:and|y|et)\s", value) if t]
            handles = [m.group(1) for t in tokens if (m := _X_TOKEN.fullmatch(t.rstrip(".")))]
            off.x_handles.extend(f"@{h}" for h in handles if f"@{h}" not in off.x_handles)
        elif kind == "mastodon":
            off.mastodon.extend(
                m if m.startswith("@") else f"@{m}" for m in _MASTODON.findall(value)
            )
        elif kind == "bluesky":
            off.bluesky.extend(m.group(1).lower() for m in _BLUESKY.finditer(value))
        if getattr(off, label) and label not in off.found:
            off.found.append(label)


def _split_address(lines: list[str]) -> list[str]:
    """Address lines, a street and a "city postcode" printed on one line put on two
    ("2650 Wisconsin Ave. NW, Washington DC 20007")."""
    out: list[str] = []
    for text in lines:
        head, sep, tail = text.rpartition(", ")
        if (
            sep
            and re.search(r"[^\W\d_]{2}", head)
            and re.search(r"\d", head)
            and re.search(r"[^\W\d_]{2}", tail)
            and re.search(r"\b\d{4,6}\b|\b[A-Z]{1,2}\d[A-Z\d]? ?\d[A-Z]{2}\b", tail)
        ):
            out.extend([head.strip(), tail.strip()])
        else:
            out.append(text)
    return out


# ---------------------------------------------------------------------------------------------
# per official: country, numbers, title, salutation, slug


def _reachable(off: Official) -> bool:
    """Whether an official's block says how to reach them: a salutation to write under, an
    email, a number, or a social handle."""
    return bool(
        off.salutation
        or off.email
        or off.fax
        or off.phone
        or off.numbers
        or off.x_handles
        or off.mastodon
        or off.bluesky
    )


class NoCountry(Exception):
    """An official whose block, numbers and document name no country: none is made up."""

    def __init__(self, official: Official):
        super().__init__(
            f"no country for the official on line {official.line} ({official.name}): neither "
            "the address, the numbers nor the reference line names one; add the country as "
            "the address's last line"
        )


def _country_of(off: Official, reader: _Reader, fallback: str | None) -> None:
    if off.address:
        last = off.address[-1]
        code = country_code(last)
        if code is None and ", " in last:
            head, _, tail = last.rpartition(", ")
            code = country_code(tail)
            if code is not None:
                off.address[-1:] = [head, tail]
        if code is not None:
            off.country = code
            return
    for _kind, raw, _no in off.numbers:
        region = _region_of_number(raw, fallback)
        if region is not None:
            off.country = region
            break
    where = "address"
    if off.country is None:
        if fallback is None:
            raise NoCountry(off)
        off.country = fallback
        where = "campaign"
        reader.onote(
            off,
            "country",
            "guessed",
            off.line,
            "the address and numbers name no country; taken from the campaign's",
        )
    postal = country_name(off.country, reader.table.language)
    off.address.append(postal)
    if where == "address":
        reader.onote(
            off,
            "address",
            "guessed",
            off.line,
            f"the country line {postal!r} was added (from the numbers)",
        )
    else:
        reader.onote(off, "address", "guessed", off.line, f"the country line {postal!r} was added")


def _region_of_number(raw: str, home: str | None) -> str | None:
    digits = re.sub(r"[^\d+]", "", raw)
    candidates = []
    if digits.startswith("00"):
        digits = "+" + digits[2:]
    if digits.startswith("+"):
        candidates.append(digits)
    else:
        if home is not None:
            try:
                local = phonenumbers.parse(digits, home)
                if phonenumbers.is_valid_number(local):
                    return home
            except phonenumbers.NumberParseException:
                pass
        candidates.append("+" + digits)
    for candidate in candidates:
        try:
            number = phonenumbers.parse(candidate, None)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_valid_number(number):
            region = phonenumbers.region_code_for_number(number)
            if isinstance(region, str) and region != "001":
                return region
    return None


def _numbers(off: Official, reader: _Reader) -> None:
    assert off.country is not None
    for kind, raw, no in off.numbers:
        if getattr(off, kind) is not None:
            continue
        try:
            setattr(off, kind, parse_number(raw, off.country, fax=kind == "fax"))
            off.found.append(kind)
        except ValueError as exc:
            reader.onote(off, kind, "missing", no, f"left out: {exc}")


def _of_part(organisation: str, reader: _Reader) -> str | None:
    end = starts_with(organisation, reader.w.every("envoy_organisations"))
    return organisation[end:].strip() if end is not None else None


def _title(off: Official, reader: _Reader, home: str | None) -> None:
    if off.title:
        return
    t = reader.table
    role = off.role
    if role and off.organisation:
        of = _of_part(off.organisation, reader)
        envoy = starts_with(role, reader.w.every("envoys")) is not None
        if of and envoy and off.country and off.country != home:
            where = country_name(off.country, t.language)
            if where in t.with_article:
                where = f"the {where}"
            off.title = t.envoy_title.format(role=role, of=of, country=where)
        else:
            org_end = starts_with(off.organisation, reader.w.every("organisations"))
            of = off.organisation[org_end:].strip() if org_end is not None else ""
            off.title = f"{role} {of}".strip()
    elif role:
        off.title = role
    elif off.organisation:
        off.title = off.organisation
    else:
        off.title = off.name
    reader.onote(off, "title", "guessed", off.line, f"no title line; made {off.title!r}")


def _head(title: str) -> str:
    m = _CONNECTOR.search(title)
    return (title[: m.start()] if m else title).strip()


def _salutation(off: Official, reader: _Reader, letter_salutation: Line | None) -> None:
    if off.salutation:
        return
    head = off.role or _head(off.title or off.name)
    if letter_salutation is not None and head and contains(letter_salutation.text, [head]):
        off.salutation = letter_salutation.text.rstrip(" ,:;")
        reader.onote(
            off, "salutation", "guessed", letter_salutation.no, "taken from the sample letter"
        )
        return
    if off.role is None and not contains(off.title or "", reader.w.every("roles")):
        off.salutation = reader.table.generic_salutation
    else:
        off.salutation = reader.table.salutation.format(role=head).strip()
    reader.onote(
        off, "salutation", "guessed", off.line, f"none in the document; made {off.salutation!r}"
    )


def _slugs(officials: list[Official], home: str | None) -> None:
    def base(off: Official, full: bool) -> str:
        title = off.title or off.name
        words_ = [
            w
            for w in slugify(title if full else _head(title)).split("-")
            if w not in SLUG_STOPWORDS
        ]
        slug = "-".join(words_[:5] if full else words_) or "official"
        if off.country and home and off.country != home:
            slug += f"-{alpha3(off.country).lower()}"
        return slug

    slugs = [base(o, False) for o in officials]
    counts = Counter(slugs)
    slugs = [base(o, True) if counts[s] > 1 else s for o, s in zip(officials, slugs, strict=True)]
    seen: Counter[str] = Counter()
    for off, slug in zip(officials, slugs, strict=True):
        seen[slug] += 1
        off.slug = slug if seen[slug] == 1 else f"{slug}-{seen[slug]}"


# ---------------------------------------------------------------------------------------------


def parse_lines(lines: list[Line], *, today: dt.date) -> Parsed:
    """The campaign's fields found in ``lines`` (see :class:`Parsed`)."""
    r = _Reader(lines)
    data: dict[str, Any] = {}

    headline, headline_no = r.headline()
    if headline is None:
        r.note("title", "missing", None, "no headline found")
        headline = "Urgent Action"
    data["title"] = _sentence_case(headline, lines)

    ua, _ = r.ua_number()
    if ua is None:
        r.note("ua_number", "missing", None, "no UA number found")
        ua = f"{r.table.ua_prefix} ?"
    data["ua_number"] = ua

    ref, ref_no, ref_index = r.reference()
    if ref is None:
        r.note("reference", "missing", None, "no document index (such as EUR 46/9686/2019) found")
        ref = "unknown"
    data["reference"] = ref

    country, _ = r.country(ref_index)

    issued, _ = r.issued(ref_index)
    if issued is None:
        issued = today
        r.note(
            "issued", "missing", None, f"no issue date found; set to today ({today.isoformat()})"
        )
    data["issued"] = issued

    until, until_no = r.act_until()
    if until is None:
        until = issued + DEFAULT_RUN
        r.note("act_until", "missing", None, f"no act-until date found; set to {until.isoformat()}")
    elif until < issued:
        r.note("act_until", "guessed", until_no, f"{until.isoformat()} is before the issue date")
        until = issued + DEFAULT_RUN
    data["act_until"] = until

    langs, _ = r.languages()
    if not langs:
        langs = [r.table.language]
        r.note("languages", "missing", None, f"no preferred language found; set to {langs[0]!r}")
    data["languages"] = langs

    sample_at, close_at = r.sample_letter()
    letter_salutation = r.lines[sample_at] if sample_at is not None else None
    sample: str | None = None
    if sample_at is not None:
        end = close_at + 1 if close_at is not None else len(lines)
        if close_at is None:
            r.note(
                "sample_letter",
                "guessed",
                lines[sample_at].no,
                "no closing line found; the letter runs to the end",
            )
        body = "\n".join(ln.text for ln in lines[sample_at:end])
        sample = re.sub(r"\n{3,}", "\n\n", body).strip() + "\n"
    else:
        r.note("sample_letter", "missing", None, "no sample letter found")

    background, _ = r.background()
    if background is None:
        r.note("background", "missing", None, "no additional information found")

    officials = r.officials(sample_at)
    home = country_code(country) if country else None
    if home is None and officials:
        # the campaign's country from the first official's address
        first = officials[0]
        home = country_code(first.address[-1]) if first.address else None
    if country is None:
        country = country_name(home, "en") if home else "unknown"
        r.note(
            "country",
            "guessed" if home else "missing",
            ref_no,
            f"no country on the reference line; set to {country!r}",
        )
    data["country"] = country

    for off in officials:
        _country_of(off, r, home)
        _numbers(off, r)
        _title(off, r, home)
        _salutation(off, r, letter_salutation)
    _slugs(officials, home)
    notes = list(r.notes)
    for i, off in enumerate(officials):
        for kind in ("email", "fax", "phone", "x_handles"):
            if kind not in off.found and not any(n.field == kind for n in off.notes):
                off.notes.append(Note(kind, "missing", off.line, "not in the document"))
        where = f"targets[{i}:{off.slug}]"
        notes.extend(Note(f"{where}.{n.field}", n.status, n.line, n.detail) for n in off.notes)
    # an encoded word's opener cannot be in a mail header (see ua_dispatch.headertext)
    subject = f"{data['title']} ({data['ua_number']})"
    data["subject"] = subject.replace(ENCODED_WORD_OPENER, "= ?")
    notes.append(
        Note("subject", "guessed", headline_no, "made from the headline and the UA number")
    )
    for lang in langs:
        if lang != r.table.language and lang not in data.get("subjects", {}):
            # a letter in a preferred language would otherwise go out under the document's
            # own subject and salutations without anyone having been told
            notes.append(
                Note(
                    f"subjects.{lang}",
                    "missing",
                    None,
                    f"letters in {lang!r} get the {r.table.language!r} subject and "
                    f"salutations; add subjects.{lang} and each official's salutations.{lang}",
                )
            )
    return Parsed(
        language=r.table.language,
        data=data,
        officials=officials,
        sample_letter=sample,
        background=background,
        notes=sorted(notes, key=lambda n: (n.line is None, n.line or 0, n.field)),
    )
