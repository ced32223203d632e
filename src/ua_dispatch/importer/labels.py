"""The words Urgent Action documents use, per language, read from the tables in ``labels/``.

Each ``labels/<code>.toml`` holds one language's labels, section phrases, letter openers and
closings, role and organisation words, country names and month names. Adding a language is
adding a table; nothing here names a language.
"""

from __future__ import annotations

import re
import tomllib
import unicodedata
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

CONTACT_KINDS = ("email", "fax", "phone", "x", "mastodon", "bluesky", "salutation")
_APOSTROPHES = str.maketrans({"’": "'", "‘": "'", "ʼ": "'", "`": "'", "´": "'"})


def fold(text: str) -> str:
    """Lower case without accents, apostrophes made plain; one character for one, so positions
    in the folded text are positions in the original."""
    out = []
    for ch in text.translate(_APOSTROPHES):
        base = unicodedata.normalize("NFKD", ch)[:1] or ch
        low = base.lower()
        out.append(low if len(low) == 1 else base)
    return "".join(out)


@dataclass(frozen=True)
class Table:
    """One language's words (see ``labels/en.toml`` for what each key means)."""

    language: str
    ua_prefix: str
    ua_words: tuple[str, ...]
    headings: tuple[str, ...]
    contact: dict[str, tuple[str, ...]]
    sections: dict[str, tuple[str, ...]]
    openers: tuple[str, ...]
    closings: tuple[str, ...]
    salutation: str
    generic_salutation: str
    honorifics: tuple[str, ...]
    roles: tuple[str, ...]
    envoys: tuple[str, ...]
    organisations: tuple[str, ...]
    envoy_title: str
    envoy_organisations: tuple[str, ...]
    postal: dict[str, str]
    with_article: tuple[str, ...]
    aliases: dict[str, str]
    months: dict[str, int]

    def section(self, key: str) -> tuple[str, ...]:
        return self.sections.get(key, ())


def _strings(data: dict[str, Any], key: str) -> tuple[str, ...]:
    value = data.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"{key} must be a list of strings")
    return tuple(value)


def _table(data: dict[str, Any]) -> Table:
    people = data.get("people", {})
    letter = data.get("letter", {})
    countries = data.get("countries", {})
    sections = data.get("sections", {})
    contact = data.get("contact", {})
    return Table(
        language=str(data["language"]),
        ua_prefix=str(data["ua_prefix"]),
        ua_words=_strings(data, "ua_words"),
        headings=_strings(data, "headings"),
        contact={k: _strings(contact, k) for k in CONTACT_KINDS},
        sections={k: _strings(sections, k) for k in sections},
        openers=_strings(letter, "openers"),
        closings=_strings(letter, "closings"),
        salutation=str(letter.get("salutation", "{role}")),
        generic_salutation=str(letter.get("generic_salutation", "")),
        honorifics=_strings(people, "honorifics"),
        roles=_strings(people, "roles"),
        envoys=_strings(people, "envoys"),
        organisations=_strings(people, "organisations"),
        envoy_title=str(people.get("envoy_title", "{role} {of}")),
        envoy_organisations=_strings(people, "envoy_organisations"),
        postal={str(k): str(v) for k, v in countries.get("postal", {}).items()},
        with_article=_strings(countries, "with_article"),
        aliases={str(k): str(v) for k, v in countries.get("aliases", {}).items()},
        months={fold(str(k)): int(v) for k, v in data.get("months", {}).items()},
    )


@cache
def tables() -> tuple[Table, ...]:
    """Every language table shipped, English first."""
    folder = resources.files("ua_dispatch.importer") / "labels"
    found = []
    for entry in sorted(folder.iterdir(), key=lambda e: (e.name != "en.toml", e.name)):
        if entry.name.endswith(".toml"):
            found.append(_table(tomllib.loads(entry.read_text(encoding="utf-8"))))
    return tuple(found)


def _alternation(phrases: list[str]) -> str:
    unique = sorted({fold(p) for p in phrases}, key=len, reverse=True)
    return "|".join(re.escape(p) for p in unique)


@dataclass(frozen=True)
class Words:
    """All tables together, for recognising a label whatever the document's language."""

    tables: tuple[Table, ...]
    contact_re: re.Pattern[str]
    contact_kind: dict[str, str]

    def every(self, getter: str) -> list[str]:
        out: list[str] = []
        for t in self.tables:
            out.extend(getattr(t, getter))
        return out

    def every_section(self, key: str) -> list[str]:
        return [p for t in self.tables for p in t.section(key)]

    @property
    def months(self) -> dict[str, int]:
        return {k: v for t in self.tables for k, v in t.months.items()}


@cache
def words() -> Words:
    ts = tables()
    kind: dict[str, str] = {}
    for t in reversed(ts):  # the first table wins a label two languages share
        for k, labels in t.contact.items():
            for label in labels:
                kind[fold(label)] = k
    # a label is a word of its own followed by a colon (French puts a space before it)
    contact_re = re.compile(rf"(?<![\w@.\-])({_alternation(list(kind))})\s*:")
    return Words(tables=ts, contact_re=contact_re, contact_kind=kind)


@cache
def _folded(phrase: str) -> str:
    return fold(phrase)


def starts_with(line: str, phrases: list[str] | tuple[str, ...]) -> int | None:
    """Where the phrase that starts ``line`` ends (the longest that matches), else None."""
    folded = fold(line).lstrip()
    offset = len(line) - len(line.lstrip())
    best: int | None = None
    for phrase in phrases:
        p = _folded(phrase)
        if folded.startswith(p):
            end = len(p)
            after = folded[end : end + 1]
            if p[-1:].isalnum() and after.isalnum():
                continue
            if best is None or end > best:
                best = end
    return None if best is None else offset + best


def contains(line: str, phrases: list[str] | tuple[str, ...]) -> bool:
    folded = fold(line)
    return any(re.search(rf"(?<!\w){re.escape(_folded(p))}(?!\w)", folded) for p in phrases)
